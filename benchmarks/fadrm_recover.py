"""Recovery wall time and peak memory of FADRM against the SRe2L-style baseline at equal iterations.

Run: `OMP_NUM_THREADS=1 python benchmarks/fadrm_recover.py [--preset small|imagenet] [--iterations 80] [--device cpu|cuda]`.

Every arm runs one recovery batch (median wall and process-CPU time of `--repeats` runs) in a fresh Python process, because peak memory (`ru_maxrss` on the CPU,
`torch.cuda.max_memory_allocated` on CUDA) is per process. Arms, all with the same total iterations:

- `sre2l`: noise init, one full-resolution stage, fp32;
- `fadrm`: real-patch init, multi-resolution stages (MRO: 24/28/24/28 px, or 200/224/200/224 for `imagenet`),
  data residual, mixed precision (MPT: fp16 autocast on CUDA; on the CPU `amp="auto"` is fp32);
- `mro_only`: FADRM's stages in fp32;
- `mpt_only`: full-resolution stages with mixed precision.

FADRM's abstract reports about 50 % less time and peak GPU memory than SRe2L-style recovery on a GPU (ImageNet,
ResNet-18). On the CPU there is no MPT and compute scales with the pixel count, so the expected time ratio of
MRO is ½(1 + (24/28)²) ≈ 0.87 and memory should barely change. The teacher is untrained: timing does not depend
on its weights.
"""
from __future__ import annotations

import argparse

import torch

from edulit.fadrm.experiments import COST_PRESETS, measure_recover_costs


def expected_time_ratio(preset: str) -> float:
    "Pixel-count estimate of the MRO time ratio: mean of (size_i / D)² over the stages."
    p = COST_PRESETS[preset]
    return sum((s/p["image_size"])**2 for s in p["mro_sizes"])/len(p["mro_sizes"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(COST_PRESETS), default="small", help="teacher and image size (default: small)")
    parser.add_argument("--iterations", type=int, default=80, help="total recovery iterations per arm, split over 4 stages (default: 80)")
    parser.add_argument("--repeats", type=int, default=3, help="recovery runs per arm; the median time is reported (default: 3)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args()
    if args.iterations < 4 or args.iterations % 4:
        parser.error(f"--iterations {args.iterations} must be a positive multiple of 4 (four stages)")

    results = measure_recover_costs(preset=args.preset, iterations=args.iterations, device=args.device, repeats=args.repeats)
    base = results[0]
    print(f"preset {args.preset}, device {args.device}, {base['images']} images, {args.iterations} iterations per arm, "
          f"median of {args.repeats} runs, one process per arm")
    print(f"{'arm':<10} {'amp':<9} {'seconds':>8} {'CPU s':>7} {'peak MiB':>9} {'recovery MiB':>12} "
          f"{'time ratio':>10} {'CPU ratio':>9} {'memory ratio':>12}")
    for r in results:
        print(f"{r['arm']:<10} {str(r['amp']):<9} {r['seconds']:8.2f} {r['cpu_seconds']:7.2f} {r['peak_mb']:9.1f} {r['recovery_mb']:12.1f} "
              f"{r['seconds']/base['seconds']:10.3f} {r['cpu_seconds']/base['cpu_seconds']:9.3f} {r['peak_mb']/base['peak_mb']:12.3f}")
    print(f"peak memory is {base['peak_kind']}; on the CPU, recovery MiB is the rise of the peak RSS during recovery "
          "and the memory ratio is dominated by the imports")
    print(f"expected MRO time ratio from pixel counts: {expected_time_ratio(args.preset):.3f}; "
          "FADRM's reported GPU target (MRO + MPT): about 0.5 for time and memory")


if __name__ == "__main__":
    main()
