"""Compute cost of AdaLRS against one fixed-LR run and against an LR grid, on the Fashion-MNIST CNN.

Runs, in one process and on the same data:
- a fixed-LR run (the baseline);
- the same run with `AdaLRSCallback(trials=False)`: the controller's overhead (loss recording and slope fits);
- a full AdaLRS run (trials, snapshots and restores);
- the grid of fixed LRs of the experiment's preset.
It prints each cost as a ratio to the baseline, plus the time and size of one snapshot and one restore.
Each timing is the minimum over `--repeats` interleaved rounds, to damp noise from other processes; the grid runs once.

    python benchmarks/adalrs_overhead.py [--preset quick|full] [--repeats 3] [--device cpu]
"""
import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from edulit.adalrs.callback import AdaLRSCallback, restore_training_state, snapshot_training_state  # noqa: E402
from edulit.adalrs.experiments import CNN_FULL, CNN_QUICK, _fit, _make_learner  # noqa: E402
from edulit.core import default_device, setup_threads  # noqa: E402


def timed_fit(config, lr, device, callback=None):
    "Wall time of one fit, its optimizer steps and its AdaLRS callback (or None)."
    learn = _make_learner(config, 0, device)
    cb = AdaLRSCallback(**callback) if callback is not None else None
    start = time.perf_counter()
    _fit(learn, config, lr, [cb] if cb else [])
    if device.type == "cuda": torch.cuda.synchronize()
    return time.perf_counter() - start, config["epochs"]*len(learn.dls.train), cb


def snapshot_cost(config, lr, device, repeats=5):
    "Seconds per snapshot and per restore, and the snapshot's size in MiB, after one short fit."
    learn = _make_learner(config, 0, device)
    _fit(learn, {**config, "epochs": 1}, lr, [])
    snap_s, restore_s, snapshot = [], [], None
    for _ in range(repeats):
        start = time.perf_counter()
        snapshot = snapshot_training_state(learn, snapshot)
        snap_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        restore_training_state(learn, snapshot)
        restore_s.append(time.perf_counter() - start)
    tensors = [t for part in (snapshot["model"].values(), *[s.values() for s in snapshot["optimizer"]]) for t in part if torch.is_tensor(t)]
    size_mb = sum(t.numel()*t.element_size() for t in tensors)/2**20
    return min(snap_s), min(restore_s), size_mb


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=["quick", "full"], default="quick", help="CNN settings: those of the adalrs_fashion_cnn preset of this name")
    parser.add_argument("--repeats", type=int, default=3, help="number of fits per timing (the minimum time is reported)")
    parser.add_argument("--device", default="cpu", help="device to train on: cpu, cuda or auto")
    args = parser.parse_args()
    setup_threads()
    device = default_device(args.device)
    config = CNN_QUICK if args.preset == "quick" else CNN_FULL
    lr = 1e-3  # 10x below the best grid LR of the quick preset (1e-2 for seeds 0 and 1), so the search has work to do
    window = config["window"]

    arms = {"fixed": None, "watch": {"window": window, "trials": False}, "adalrs": {"window": window}}
    times = {arm: [] for arm in arms}
    for _ in range(args.repeats):  # interleaved rounds, so a burst of load from other processes hits every arm alike
        for arm, callback in arms.items():
            seconds, steps, cb = timed_fit(config, lr, device, callback)
            times[arm].append(seconds)
            if arm == "adalrs": result = cb.result
    fixed_s, watch_s, ada_s = (min(times[arm]) for arm in arms)
    grid_s = sum(timed_fit(config, g, device)[0] for g in config["grid"])
    snap_s, restore_s, size_mb = snapshot_cost(config, lr, device)

    print(f"Fashion-MNIST CNN, preset {args.preset}, {steps} steps, window {window}, device {device}, torch threads {torch.get_num_threads()}")
    print(f"fixed-LR run:                      {fixed_s:8.2f} s  (1.000x)")
    print(f"AdaLRS, trials disabled:           {watch_s:8.2f} s  ({watch_s/fixed_s:.3f}x)  controller overhead")
    print(f"AdaLRS:                            {ada_s:8.2f} s  ({ada_s/fixed_s:.3f}x)  goal <= 1.15x")
    print(f"grid of {len(config['grid'])} fixed LRs:              {grid_s:8.2f} s  ({grid_s/fixed_s:.3f}x)")
    print(f"AdaLRS decisions {result.counts}, steps discarded {result.steps_discarded} of {result.total_steps} "
          f"({result.steps_discarded/result.total_steps:.1%}); final LR {lr*result.scale:.3g}")
    print(f"snapshot {snap_s*1e3:.2f} ms, restore {restore_s*1e3:.2f} ms, {size_mb:.2f} MiB; "
          f"one window of {window} steps takes about {fixed_s/steps*window*1e3:.1f} ms "
          f"(snapshot + restore = {(snap_s + restore_s)/(fixed_s/steps*window):.1%} of a window)")


if __name__ == "__main__":
    main()
