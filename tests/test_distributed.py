"The KD training step in 2 gloo processes on 127.0.0.1 ends with identical weights on both ranks."
import socket
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_ranks_identical(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(WORKER), str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    w0, w1 = torch.load(tmp_path/"rank0.pt"), torch.load(tmp_path/"rank1.pt")
    init = torch.load(tmp_path/"init.pt")
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), f"rank 0 and rank 1 differ in {k}"
    changed = [k for k in w0 if w0[k].is_floating_point() and not torch.equal(w0[k], init[k])]
    assert changed, "training did not change any weight"
