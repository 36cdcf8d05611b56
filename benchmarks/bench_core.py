"""Core overheads, measured in one run on this machine's CPU (a benchmark, not a test).

1. One training step of ResNet-18 (CIFAR shape, Adam) at batch 32 and at batch 8, where the
   penalty's share of the step is largest: plain, with SLR attached, with ADMM attached, and
   with the masks of masked retraining attached (after hard-pruning); medians over interleaved
   rounds, and the ratios to plain. Target: SLR and masks steps <= 1.03x plain.
2. One full-model irregular projection of ResNet-50 (every conv and fc weight, 90% pruned):
   ours (torch, on the weights' device) against the authors' way (numpy percentile with a host
   round trip per layer). Target: ours >= 5x faster.

    python benchmarks/bench_core.py [--rounds 7] [--steps 5] [--threads N] [--device cuda]

With ``--device cuda`` both run on the GPU (the clock stops after a device synchronize);
benchmarks/gpu_check.py imports these functions for its report.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core import ADMM, SLR, SparsityConfig  # noqa: E402
from core.pruning.projections import project  # noqa: E402


def cifar_resnet18() -> nn.Module:
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model


def synchronize(device: "torch.device | str") -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, optimizer, batch, steps: int) -> float:
    x, y = batch
    synchronize(x.device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(x.device)
    return (time.perf_counter() - start) / steps


VARIANTS = ("plain", "slr", "admm", "masks")


def bench_steps(rounds: int, steps: int, batch_size: int, device: "torch.device | str" = "cpu") -> dict[str, float]:
    torch.manual_seed(0)
    base = cifar_resnet18().to(device)
    batch = (torch.randn(batch_size, 3, 32, 32, device=device), torch.randint(0, 10, (batch_size,), device=device))
    sparsity = SparsityConfig.from_dict({"target_rate": 8.71, "include": ["*conv*.weight", "*downsample.0.weight", "fc.weight"]})
    variants = {}
    for name in VARIANTS:
        model = copy.deepcopy(base)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        if name == "slr":
            SLR(model, sparsity).attach(optimizer)
        elif name == "admm":
            ADMM(model, sparsity).attach(optimizer)
        elif name == "masks":
            SLR(model, sparsity).hard_prune().attach(optimizer)  # masked retraining
        variants[name] = (model, optimizer)
        time_steps(model, optimizer, batch, 2)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        order = list(variants)[r % len(variants):] + list(variants)[: r % len(variants)]  # rotate to spread drift evenly
        for name in order:
            times[name].append(time_steps(*variants[name], batch, steps))
    return {name: statistics.median(values) for name, values in times.items()}


def numpy_percentile_projection(weights: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """The authors' way: to host, numpy percentile threshold, zero below it, back to the device."""
    out = []
    for w in weights:
        array = w.detach().cpu().numpy().copy()
        threshold = np.percentile(np.abs(array), ratio * 100)
        array[np.abs(array) < threshold] = 0
        out.append(torch.from_numpy(array).to(w.device))
    return out


def torch_projection(weights: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    return [project(w, "irregular", ratio) for w in weights]


def bench_projection(repeats: int, device: "torch.device | str" = "cpu") -> dict[str, float]:
    model = torchvision.models.resnet50().to(device)
    weights = [p.detach() for p in model.parameters() if p.dim() > 1]
    times: dict[str, list[float]] = {"numpy": [], "torch": []}
    for r in range(repeats):
        for name, fn in (("numpy", numpy_percentile_projection), ("torch", torch_projection))[:: 1 if r % 2 else -1]:
            synchronize(device)
            start = time.perf_counter()
            fn(weights, 0.9)
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    kept = sum(int(torch.count_nonzero(w)) for w in torch_projection(weights, 0.9))
    total = sum(w.numel() for w in weights)
    return {"numpy": statistics.median(times["numpy"]), "torch": statistics.median(times["torch"]),
            "weights": total, "kept": kept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 8])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {where}")
    for batch_size in args.batches:
        steps = bench_steps(args.rounds, args.steps, batch_size, device)
        print(f"\nResNet-18 (CIFAR shape), batch {batch_size}, Adam, one training step (median of {args.rounds} rounds):")
        for name in VARIANTS:
            print(f"  {name:<6} {steps[name] * 1e3:9.1f} ms   {steps[name] / steps['plain']:.3f}x plain")
        for name, label in (("slr", "SLR"), ("masks", "masks")):
            ratio = steps[name] / steps["plain"]
            print(f"  batch {batch_size}: {label}/plain = {ratio:.3f} (target <= 1.03: {'met' if ratio <= 1.03 else 'NOT met'})")
    proj = bench_projection(args.repeats, device)
    speedup = proj["numpy"] / proj["torch"]
    print(f"\nResNet-50 full-model irregular projection, 90% pruned ({proj['weights']:,} weights, {proj['kept']:,} kept):")
    print(f"  numpy percentile + host round trip {proj['numpy'] * 1e3:9.1f} ms")
    print(f"  torch on device (exact budget)     {proj['torch'] * 1e3:9.1f} ms")
    print(f"  speed-up = {speedup:.2f}x (target >= 5: {'met' if speedup >= 5 else 'NOT met'})")


if __name__ == "__main__":
    main()
