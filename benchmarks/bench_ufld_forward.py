"""Forward time of UFLD per 288x800 frame on CPU (inference: no auxiliary branch, batch 1).

    python benchmarks/bench_ufld_forward.py [--threads 1 2] [--repeats 10] [--width 64]

Prints the median and minimum over ``--repeats`` timed forwards after two warm-up forwards,
for each thread count. A benchmark, not a test: timings depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lane_tusimple.model import UFLD, UFLDConfig  # noqa: E402


def time_forward(model: torch.nn.Module, frame: torch.Tensor, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` forwards of ``frame`` (after two warm-up forwards)."""
    times = []
    with torch.inference_mode():
        for _ in range(2):
            model(frame)
        for _ in range(repeats):
            start = time.perf_counter()
            model(frame)
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--width", type=int, default=64, help="backbone width (64 = ResNet-18, the published model)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = UFLD(UFLDConfig(width=args.width)).eval()
    params = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("aux_"))
    frame = torch.randn(1, 3, 288, 800)
    print(f"UFLD ResNet-18 (width {args.width}), input 1x3x288x800, {params / 1e6:.2f} M parameters used at inference, "
          f"torch {torch.__version__}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        times = time_forward(model, frame, args.repeats)
        print(f"threads={threads}: median {1000 * statistics.median(times):.1f} ms/frame, "
              f"min {1000 * min(times):.1f} ms/frame over {len(times)} forwards")


if __name__ == "__main__":
    main()
