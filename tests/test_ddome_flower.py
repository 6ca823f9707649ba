"""DDOME on Flower: the in-process Grid and a real local deployment end bitwise equal to the simulator,
and a SuperNode killed mid-run fails the run and leaves no Flower process behind."""
import os
import time

import pytest
import torch

pytest.importorskip("flwr")

from edulit.ddome.federation import prepare_federation, run_simulation
from edulit.ddome.flower import (FederationRunError, LocalFederation, flower_processes, run_config_for,
                                 run_flower_deployment, run_flower_in_process, write_flower_app)
from edulit.ddome.moe import DDOMEConfig

# 12 digits clients (3 anchors), 2 anchors + 3 normal clients per round, M = 3, K = 2, 3 rounds.
SMALL = DDOMEConfig(dataset="digits", n_clients=12, n_experts=3, top_k=2, labels_per_client=4, n_test_clients=3,
                    test_client_size=60, public_size=150, public_valid_size=150, anchors_per_round=2,
                    normals_per_round=3, rounds=3, batch_size=32, gate_hidden=32, expert_hidden=32)
# Seconds for a whole 3-round deployment. It took 298 s and 446 s on a 2-core machine shared with other jobs
# (load average about 11), so the default deadline leaves room for a loaded machine.
DEPLOY_DEADLINE = float(os.environ.get("EDULIT_FLOWER_DEADLINE", "600"))


@pytest.fixture(scope="module")
def federation():
    torch.set_num_threads(1)
    data = prepare_federation(SMALL, seed=0)
    return data, run_simulation(data, SMALL, seed=0, evaluate=False)


def assert_same_state(state, reference):
    assert list(state) == list(reference)
    for key in reference:
        assert torch.equal(state[key], reference[key]), f"{key} differs from the simulator"


def assert_same_rounds(rounds, reference):
    assert len(rounds) == len(reference)
    for got, expected in zip(rounds, reference):
        for field in ("clients", "selections", "bytes_down", "bytes_up"):
            assert got[field] == expected[field], f"round {expected['round']}: {field} differs"


def test_in_process_grid_matches_simulator(federation, tmp_path):
    data, sim = federation
    state, rounds = run_flower_in_process(data, tmp_path, num_nodes=3)
    assert_same_state(state, sim.state)
    assert_same_rounds(rounds, sim.rounds)


def test_in_process_two_nodes_matches_simulator(federation, tmp_path):
    data, sim = federation
    state, _ = run_flower_in_process(data, tmp_path, num_nodes=2)
    assert_same_state(state, sim.state)


@pytest.mark.slow
def test_deployment_matches_simulator(federation, tmp_path):
    data, sim = federation
    started = time.monotonic()
    state, rounds = run_flower_deployment(data, tmp_path, num_nodes=3, timeout=DEPLOY_DEADLINE, round_timeout=DEPLOY_DEADLINE/3)
    print(f"deployment of {SMALL.rounds} rounds took {time.monotonic() - started:.0f} s")
    assert_same_state(state, sim.state)
    assert_same_rounds(rounds, sim.rounds)
    assert flower_processes(tmp_path) == []


@pytest.mark.slow
def test_killed_supernode_fails_run(federation, tmp_path):
    data, _ = federation
    federation_dir = data.save(tmp_path/"federation")
    app_dir = write_flower_app(tmp_path/"app")
    round_timeout = 60.0
    local = LocalFederation(3, tmp_path/"flower")
    try:
        local.start()
        run_id = local.start_run(app_dir, run_config_for(federation_dir, tmp_path/"out", 3, round_timeout))
        deadline = time.monotonic() + DEPLOY_DEADLINE
        while local.run_status(run_id) != "running" and time.monotonic() < deadline: time.sleep(0.5)
        assert local.run_status(run_id) == "running"
        local.kill_node(1)
        started = time.monotonic()
        # Node discovery or the current round waits at most round_timeout for the dead node, then the ServerApp raises.
        with pytest.raises(FederationRunError, match="finished:failed"):
            local.wait_run(run_id, timeout=DEPLOY_DEADLINE)
        assert time.monotonic() - started < DEPLOY_DEADLINE
    finally:
        local.stop()
    assert flower_processes(tmp_path) == []
    assert not (tmp_path/"out"/"final_state.pt").exists()
