"One rank of the KD training step under torchrun; saves its student weights to OUT/rank{RANK}.pt."
import os
import sys
from pathlib import Path

import torch

from edulit.core import set_seed
from edulit.data import load_fashion_mnist
from edulit.distributed import cleanup_distributed, get_rank, get_world_size, init_distributed
from edulit.kd import fit_classifier, make_dls, small_cnn

out = Path(sys.argv[1])
device = torch.device("cpu")
assert init_distributed(device), "expected WORLD_SIZE > 1 under torchrun"
assert get_world_size() == 2
x, y = load_fashion_mnist("test")
set_seed(0)
teacher = small_cnn((8,), 16)  # the same (untrained) teacher on every rank
# A different seed per rank for the student: DDP must broadcast rank 0's initial weights.
set_seed(1 + get_rank())
student = small_cnn((4,), 8)
if get_rank() == 0: torch.save({k: v.clone() for k, v in student.state_dict().items()}, out/"init_rank0_before_ddp.pt")
dls = make_dls(x[:512], y[:512], x[512:768], y[512:768], bs=64, seed=0, device=device)
assert len(dls.train) == 4, len(dls.train)  # 512 items / 2 ranks / 64 per batch
learn, _ = fit_classifier(student, dls, 1, 3e-3, teacher=teacher)
torch.save(learn.model.state_dict(), out/f"rank{get_rank()}.pt")
if get_rank() == 0: torch.save(torch.load(out/"init_rank0_before_ddp.pt"), out/"init.pt")
cleanup_distributed()
