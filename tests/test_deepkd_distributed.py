"""DeepKD under data parallelism: two gloo processes on 127.0.0.1, each with half of every batch, must take
the same steps as one process with the whole batch."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from edulit.deepkd.losses import stream_losses
from edulit.deepkd.trainer import DeepKDOptimizer, _average_across_processes, stream_grads

STEPS, BATCH = 5, 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batches():
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(BATCH, 12, generator=g), torch.randn(BATCH, 5, generator=g)*2, torch.randint(0, 5, (BATCH,), generator=g))
            for _ in range(STEPS)]


def _train(rank: int = 0, world_size: int = 1) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 5)).double()
    opt = DeepKDOptimizer(model.parameters(), lr=0.1, weight_decay=5e-4)
    for x, teacher_logits, y in _batches():
        shard = slice(rank*BATCH//world_size, (rank + 1)*BATCH//world_size)
        x, teacher_logits, y = x[shard].double(), teacher_logits[shard].double(), y[shard]
        grads = stream_grads(stream_losses(model(x), teacher_logits, y), opt.params)
        if world_size > 1: _average_across_processes(grads)
        opt.step_streams(grads)
    return [p.detach().clone() for p in model.parameters()]


def _worker(rank: int, world_size: int, port: int, out_dir: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try: torch.save(_train(rank, world_size), os.path.join(out_dir, f"rank{rank}.pt"))
    finally: dist.destroy_process_group()


@pytest.mark.slow  # spawning two processes that import fastai took 97 s on a shared 2-core machine
def test_two_processes_match_single(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    single = _train()
    for rank in range(2):
        params = torch.load(tmp_path/f"rank{rank}.pt", weights_only=True)
        for got, expected in zip(params, single):
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
