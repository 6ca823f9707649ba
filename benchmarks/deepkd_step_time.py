"""Step time of DeepKD's three-stream update against a plain KD step, measured in one process.

Run: `OMP_NUM_THREADS=1 python benchmarks/deepkd_step_time.py [--device cuda] [--blocks 7]`.

Each variant trains its own copy of the same student on the same batches. After a warm-up, blocks of
`--steps` steps of every variant are interleaved, and the median block time per variant is divided by the
KD median. Variants:

- `kd`: one backward pass of CE + KD, `torch.optim.SGD` with momentum;
- `deepkd_backward`: the official approach, three `.backward()` calls (NCKD, TCKD, CE);
- `deepkd_autograd`: three `torch.autograd.grad` calls;
- `deepkd_merged`: one pass per group of equal momentum (two for the KD momenta 0.975, 0.825, 0.975);
- `deepkd_batched`: the three logit gradients in one vmapped backward pass (`is_grads_batched`).

Before timing, every DeepKD variant runs 100 steps from the same weights, in float32 and in float64, and its
parameters are compared with the three-backward reference. Merging streams changes the order of float
additions, and 100 steps with momentum 0.975 amplify that rounding difference, so the float64 figure is the
one that shows the methods compute the same update. Last, the optimizer step alone is timed against the number of
parameter tensors, which should grow linearly.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from edulit.deepkd.losses import stream_losses
from edulit.deepkd.trainer import DeepKDOptimizer, stream_grads
from edulit.distill import kd_loss

METHODS = ("backward", "autograd", "merged", "batched")


def make_students(kind: str, n_copies: int, device) -> list[nn.Module]:
    torch.manual_seed(0)
    if kind == "mlp":  # the Fashion-MNIST student of the deepkd_fmnist experiment
        base = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    else:  # a small CNN, where the backward pass dominates the step
        base = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32*49, 128), nn.ReLU(), nn.Linear(128, 10))
    base = base.to(device)
    return [copy.deepcopy(base) for _ in range(n_copies)]


def make_batches(n: int, bs: int, device, seed: int = 0) -> list[tuple]:
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        x = torch.randn(bs, 1, 28, 28, generator=g)
        y = torch.randint(0, 10, (bs,), generator=g)
        teacher_logits = torch.randn(bs, 10, generator=g)*3 + 4*nn.functional.one_hot(y, 10)  # a teacher that is mostly right
        batches.append((x.to(device), teacher_logits.to(device), y.to(device)))
    return batches


class KDStep:
    "One-backward KD step (w_ce 0.5, w_kd 1, T 4) with torch SGD."
    def __init__(self, model, lr=0.05, wd=5e-4):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)

    def __call__(self, x, teacher_logits, y):
        z = self.model(x)
        loss = 0.5*nn.functional.cross_entropy(z, y) + kd_loss(z, teacher_logits, 4.0)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


class DeepKDStep:
    "One DeepKD step with the paper's momenta; `method` selects how the stream gradients are computed."
    def __init__(self, model, method, lr=0.05, wd=5e-4):
        self.model, self.method = model, method
        self.opt = DeepKDOptimizer(model.parameters(), lr=lr, weight_decay=wd)
        self.groups = self.opt.merge_groups()

    def __call__(self, x, teacher_logits, y):
        z = self.model(x)
        losses = stream_losses(z, teacher_logits, y, temperature=4.0, ce_weight=0.5, kd_weight=1.0)
        grads = stream_grads(losses, self.opt.params, self.method, logits=z, groups=self.groups)
        self.opt.step_streams(grads)


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def check_equality(kind, device, dtype=torch.float32, steps=100, bs=64):
    "Max relative parameter difference of each method to the three-backward reference after `steps` steps."
    batches = [tuple(t.to(dtype) if t.is_floating_point() else t for t in b) for b in make_batches(steps, bs, device, seed=1)]
    models = [m.to(dtype) for m in make_students(kind, len(METHODS), device)]
    runners = {m: DeepKDStep(model, m) for m, model in zip(METHODS, models)}
    for b in batches:
        for r in runners.values(): r(*b)
    ref = torch.cat([p.detach().flatten() for p in runners["backward"].model.parameters()])
    out = {}
    for m, r in runners.items():
        got = torch.cat([p.detach().flatten() for p in r.model.parameters()])
        out[m] = float((got - ref).abs().max()/ref.abs().max())
    return out


def time_variants(kind, device, bs, steps, blocks, warmup=10):
    names = ["kd"] + [f"deepkd_{m}" for m in METHODS]
    models = make_students(kind, len(names), device)
    runners = {"kd": KDStep(models[0])} | {f"deepkd_{m}": DeepKDStep(model, m) for m, model in zip(METHODS, models[1:])}
    batches = make_batches(steps, bs, device, seed=2)
    for r in runners.values():
        for b in batches[:warmup]: r(*b)
    times = {n: [] for n in names}
    peak = {}
    for _ in range(blocks):
        for n, r in runners.items():
            if device.type == "cuda": torch.cuda.reset_peak_memory_stats()
            sync(device); t0 = time.perf_counter()
            for b in batches: r(*b)
            sync(device); times[n].append((time.perf_counter() - t0)/steps)
            if device.type == "cuda": peak[n] = torch.cuda.max_memory_allocated()/2**20
    return {n: statistics.median(t) for n, t in times.items()}, peak


def time_optimizer_step(device, n_tensors_list=(8, 32, 128, 512), repeats=30):
    "Time `step_streams` alone against the number of parameter tensors (64 elements each)."
    out = {}
    for n in n_tensors_list:
        params = [nn.Parameter(torch.randn(64, device=device)) for _ in range(n)]
        opt = DeepKDOptimizer(params, lr=0.01, weight_decay=5e-4)
        grads = {s: [torch.randn(64, device=device) for _ in range(n)] for s in ("tog", "tcg", "ncg")}
        opt.step_streams(grads)
        sync(device); t0 = time.perf_counter()
        for _ in range(repeats): opt.step_streams(grads)
        sync(device); out[n] = (time.perf_counter() - t0)/repeats
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=5, help="interleaved blocks per variant; the median block is reported")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    for kind, bs in (("mlp", 128), ("cnn", 64)):
        print(f"\n[{kind}, batch {bs}] max relative parameter difference to three-backward after 100 steps:")
        for dtype in (torch.float32, torch.float64):
            eq = check_equality(kind, device, dtype)
            print(f"  {str(dtype).removeprefix('torch.')}: " + ", ".join(f"{m} {d:.1e}" for m, d in eq.items()))
        med, peak = time_variants(kind, device, bs, args.steps, args.blocks)
        for n, t in med.items():
            mem = f", peak {peak[n]:.1f} MiB" if n in peak else ""
            print(f"  {n:18s} {t*1e3:8.3f} ms/step  ratio to kd {t/med['kd']:.2f}{mem}")
    steps = time_optimizer_step(device)
    base_n = min(steps)
    print("\nstep_streams alone: " + ", ".join(f"{n} tensors {t*1e3:.3f} ms ({t/steps[base_n]:.1f}x)" for n, t in steps.items()))


if __name__ == "__main__":
    main()
