"""Student training throughput with stored soft labels against an online teacher, measured in one run.

Run: `OMP_NUM_THREADS=1 python benchmarks/fadrm_replay.py [--ipc 10] [--epochs 5] [--teacher convnet] [--device cpu]`.

Both arms train a fresh `convnet_small` student on the same replayed batches (crops, flips and CutMix from one
relabel store of random real Fashion-MNIST images):

- `replay`: soft labels read from the store, as `edulit.fadrm.relabel.train_student` does;
- `online`: the teacher runs on every batch instead, as a student without a relabel store would.

It prints images per second of each arm and their ratio; stored labels should be faster (ratio > 1) because the
teacher's forward pass is gone. Teachers are untrained, since timing does not depend on their weights.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from edulit.fadrm.relabel import FKDLoss, RelabelConfig, mixed_views, relabel
from edulit.fadrm.select import random_real
from edulit.fadrm.teachers import load_distill_data, make_model


def images_per_second(store, images, normalize, student, teacher, device) -> float:
    "Train `student` over every stored batch once; with `teacher`, its logits replace the stored ones."
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.01)
    loss_func = FKDLoss()
    seen, start = 0, time.perf_counter()
    for epoch in range(store.epochs):
        for batch in range(store.n_batches):
            xb = normalize(mixed_views(images, store, epoch, batch)).to(device)
            if teacher is None:
                target = store.logits[epoch, store.rows(batch)].float().to(device)
            else:
                with torch.no_grad(): target = teacher(xb)
            loss = loss_func(student(xb), target)
            opt.zero_grad(); loss.backward(); opt.step()
            seen += len(xb)
    if device.type == "cuda": torch.cuda.synchronize()
    return seen/(time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ipc", type=int, default=10, help="images per class in the distilled set (default: 10)")
    parser.add_argument("--epochs", type=int, default=5, help="relabel epochs, each replayed once per arm (default: 5)")
    parser.add_argument("--teacher", default="convnet", help="teacher architecture of the online arm (default: convnet)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)

    data = load_distill_data("fashion_mnist")
    images, _ = random_real(data, args.ipc, seed=0)
    torch.manual_seed(0)
    teacher = make_model(args.teacher, data.channels, data.n_classes, data.image_size).to(device).eval().requires_grad_(False)
    store = relabel(images, [teacher], data.normalize, RelabelConfig(epochs=args.epochs, relabel_bn="eval"), seed=0, device=device)

    results = {}
    for arm in ("replay", "online", "replay", "online"):  # interleaved; the second round is reported
        torch.manual_seed(0)
        student = make_model("convnet_small", data.channels, data.n_classes, data.image_size).to(device)
        results[arm] = images_per_second(store, images, data.normalize, student, None if arm == "replay" else teacher, device)
    print(f"{len(images)} images, {args.epochs} epochs, teacher {args.teacher}, device {device}")
    for arm, rate in results.items(): print(f"{arm:<7} {rate:9.1f} images/s")
    print(f"replay / online throughput ratio: {results['replay']/results['online']:.2f} (expected > 1)")


if __name__ == "__main__":
    main()
