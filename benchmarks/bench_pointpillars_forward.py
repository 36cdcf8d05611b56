"""Seconds per frame of the full-size PointPillars on a real KITTI frame on CPU (a measurement, not a test).

    SLR_DATA_ROOT=../shared/data python benchmarks/bench_pointpillars_forward.py [--frame 000002] [--repeats 3] [--threads 2]

Times voxelization, the network forward pass and decoding + NMS separately (eval mode,
40000 test pillars, the camera field of view only as in training).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.errors import DataError, exit_on_user_error  # noqa: E402
from core.harness.config import load_run_config  # noqa: E402
from pointpillars_kitti.boxes import fov_mask  # noqa: E402
from pointpillars_kitti.kitti_io import read_calib, read_image_size, read_points  # noqa: E402
from pointpillars_kitti.model import PointPillars  # noqa: E402

CONFIG = ROOT / "pointpillars_kitti" / "configs" / "pointpillars.yaml"


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("SLR_DATA_ROOT", "../shared/data")) / "kitti")
    parser.add_argument("--frame", default="000002")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    train = args.data_root / "training"
    if not (train / "velodyne" / f"{args.frame}.bin").is_file():
        raise DataError(f"no frame {args.frame} under {train}; pass --data-root pointing at a KITTI folder")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = PointPillars(load_run_config(CONFIG, "paper")["model"]).eval()
    points = read_points(train / "velodyne" / f"{args.frame}.bin")
    points = points[fov_mask(points, read_calib(train / "calib" / f"{args.frame}.txt"), read_image_size(train / "image_2" / f"{args.frame}.png"))]
    points = torch.from_numpy(points)
    times = []
    with torch.no_grad():
        for r in range(args.repeats + 1):  # the first pass warms up
            t0 = time.perf_counter()
            batch = model.voxelize([points])
            t1 = time.perf_counter()
            preds = model(batch)
            t2 = time.perf_counter()
            model.predict(preds)
            t3 = time.perf_counter()
            if r:
                times.append((t1 - t0, t2 - t1, t3 - t2))
    n = len(times)
    vox, fwd, post = (sum(t[i] for t in times) / n for i in range(3))
    print(f"frame {args.frame}: {len(points)} points in the camera view, {len(batch['voxels'])} pillars, "
          f"{sum(p.numel() for p in model.parameters())} parameters, {torch.get_num_threads()} threads")
    print(f"voxelize {vox:.3f} s, network forward {fwd:.3f} s, decode + NMS {post:.3f} s; total {vox + fwd + post:.3f} s per frame (mean of {n})")


if __name__ == "__main__":
    main()
