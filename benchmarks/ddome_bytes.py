"""Measure DDOME's logical bytes per round and the per-round wall time of each engine.

Bytes are measured against clients per round N and experts M. Wall time compares the in-process
simulator, the Flower apps on the in-process Grid and a local Flower deployment.

Run: python benchmarks/ddome_bytes.py [--skip-deployment]

Bytes come from the arrays each message carries, over 3 rounds per setting on scikit-learn digits.
The experts are MLPs 64-128-10, so on 8x8 digits the gate (128-128-M) is larger than one expert and
DDOME/FedAvg is higher than with 28x28 images. Ratios are against the smallest setting of the same run.
The deployment runs 1 SuperLink and 3 SuperNodes on 127.0.0.1 and takes minutes on a shared 2-core machine.
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from edulit.ddome.federation import (INDEX_BYTES, init_state, payload_bytes, prepare_federation, run_simulation,
                                     state_subset)
from edulit.ddome.moe import DDOMEConfig

BASE = dict(dataset="digits", n_clients=40, labels_per_client=4, n_test_clients=3, test_client_size=60,
            public_size=150, public_valid_size=150, batch_size=32, rounds=3)


def bytes_per_round(config: DDOMEConfig, seed: int = 0):
    "Mean logical bytes per round (down + up) over the run, the formula's value, and the sizes of gate and expert."
    data = prepare_federation(config, seed)
    run = run_simulation(data, config, seed, evaluate=False)
    state = init_state(config, data.in_shape, data.n_classes, seed)
    gate, expert = payload_bytes(state_subset(state, True, [])), payload_bytes(state_subset(state, False, [0]))
    measured = np.mean([r["bytes_down"] + r["bytes_up"] for r in run.rounds])
    formula = []
    for r in run.rounds:
        sizes = [len(s) for s in r["selections"].values()]
        if config.method == "ddome":
            normals = sum(1 for cid in r["clients"] if cid >= config.n_experts or not config.use_anchors) if config.top_k < config.n_experts else 0
            formula.append(2*len(sizes)*gate + 2*sum(sizes)*expert + INDEX_BYTES*config.top_k*normals)
        else:
            formula.append(2*len(sizes)*expert)
    return measured, float(np.mean(formula)), gate, expert


def scaling_in_n():
    probe = DDOMEConfig(**BASE, n_experts=8, top_k=2, anchors_per_round=1, normals_per_round=1)
    _, _, gate, expert = bytes_per_round(DDOMEConfig(**{**probe.__dict__, "rounds": 1}))
    print(f"Gate P_r = {gate} bytes, one expert P_e = {expert} bytes (M = 8).")
    print("Bytes per round against clients per round N (M = 8, K = 2, half anchors):")
    print(f"{'N':>3} {'DDOME':>12} {'ratio':>6} {'/formula':>9} {'FedAvg':>11} {'ratio':>6} {'FedMix':>12} {'ratio':>6} {'DDOME/FedAvg':>13} {'DDOME/FedMix':>13}")
    rows, first = [], None
    for n in (2, 4, 8, 16):
        common = dict(BASE, n_experts=8, top_k=2, anchors_per_round=n//2, normals_per_round=n - n//2)
        ddome, formula, _, _ = bytes_per_round(DDOMEConfig(**common))
        fedavg, _, _, _ = bytes_per_round(DDOMEConfig(**common, method="fedavg"))
        fedmix, _, _, _ = bytes_per_round(DDOMEConfig(**{**common, "top_k": 8}, use_anchors=False))
        first = first or (ddome, fedavg, fedmix)
        rows.append((n, ddome))
        print(f"{n:>3} {ddome:>12.0f} {ddome/first[0]:>6.2f} {ddome/formula:>9.3f} {fedavg:>11.0f} {fedavg/first[1]:>6.2f} "
              f"{fedmix:>12.0f} {fedmix/first[2]:>6.2f} {ddome/fedavg:>13.2f} {ddome/fedmix:>13.2f}")
    x, y = np.array([r[0] for r in rows], float), np.array([r[1] for r in rows])
    fit = np.polyfit(x, y, 1)
    r2 = 1 - ((y - np.polyval(fit, x))**2).sum()/((y - y.mean())**2).sum()
    print(f"linear fit of DDOME bytes on N: R^2 = {r2:.6f}")


def scaling_in_m():
    print("\nBytes per round against experts M (N = 10: 2 anchors, 8 normal clients, K = 2):")
    print(f"{'M':>3} {'DDOME':>12} {'ratio':>6} {'FedMix':>12} {'ratio':>6}")
    first = None
    for m in (2, 5, 10):
        common = dict(BASE, n_experts=m, top_k=2, anchors_per_round=2, normals_per_round=8)
        ddome, _, _, _ = bytes_per_round(DDOMEConfig(**common))
        fedmix, _, _, _ = bytes_per_round(DDOMEConfig(**{**common, "top_k": m}, use_anchors=False))
        first = first or (ddome, fedmix)
        print(f"{m:>3} {ddome:>12.0f} {ddome/first[0]:>6.2f} {fedmix:>12.0f} {fedmix/first[1]:>6.2f}")


def engine_time(with_deployment: bool):
    "Per-round wall time of the simulator, the Flower apps on the in-process Grid and, optionally, a local deployment."
    from edulit.ddome.flower import run_flower_deployment, run_flower_in_process
    config = DDOMEConfig(dataset="digits", n_clients=12, n_experts=3, top_k=2, labels_per_client=4, n_test_clients=3,
                         test_client_size=60, public_size=150, public_valid_size=150, anchors_per_round=2,
                         normals_per_round=3, rounds=3, batch_size=32, gate_hidden=32, expert_hidden=32)
    data = prepare_federation(config, 0)
    sim = run_simulation(data, config, 0, evaluate=False)
    sim_round = np.mean([r["seconds"] for r in sim.rounds])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_flower_in_process(data, tmp)
        in_process = (time.perf_counter() - t0)/config.rounds
    print(f"\nPer-round wall time, 12 clients on 3 nodes, 5 active per round, {config.rounds} rounds:")
    print(f"simulator {sim_round:.3f} s; Flower apps on the in-process Grid {in_process:.3f} s ({in_process/sim_round:.1f}x)")
    if not with_deployment: return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        _, rounds = run_flower_deployment(data, tmp, timeout=900, round_timeout=300)
        total = time.perf_counter() - t0
    deployed_round = np.mean([r["seconds"] for r in rounds])
    print(f"Flower deployment {deployed_round:.1f} s per round ({deployed_round/sim_round:.0f}x the simulator); "
          f"{total:.0f} s in all, with start-up")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-deployment", action="store_true", help="skip timing the Flower deployment, which takes minutes")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scaling_in_n()
    scaling_in_m()
    engine_time(with_deployment=not args.skip_deployment)
