"""A short CPU training run on generated KITTI-format scenes: loss and AP per epoch (a measurement, not a test).

    python benchmarks/pointpillars_train_check.py [--epochs 8] [--out /tmp/ppk_train_check]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.harness.config import apply_overrides, load_run_config  # noqa: E402
from core.harness.loop import train_one_epoch  # noqa: E402
from pointpillars_kitti.synthetic import generate_kitti_scenes  # noqa: E402
from pointpillars_kitti.task import PRIMARY_METRIC, KittiTask, load_kitti_data  # noqa: E402

CONFIG = ROOT / "pointpillars_kitti" / "configs" / "pointpillars.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("/tmp/ppk_train_check"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override the smoke config")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = apply_overrides(load_run_config(CONFIG, "smoke"), args.overrides)
    cfg["dense"]["epochs"] = args.epochs
    data = cfg["data"]
    root = generate_kitti_scenes(args.out / f"synthetic_kitti_{data['num_train_scenes']}_{data['num_eval_scenes']}",
                                 data["num_train_scenes"], data["num_eval_scenes"], data["synthetic_seed"], data["max_range"])
    task = KittiTask(cfg, load_kitti_data(cfg, root))
    model = task.new_model()
    optimizer, scheduler = task.build_optimizer(model, "dense")
    keys = [PRIMARY_METRIC, "bev_iou05_R11_mAP_moderate", "3d_iou05_R40_Car_moderate", "bbox_official_R11_mAP_moderate"]
    metrics = task.evaluate(model)
    print(f"{len(task.train_set)} training scenes, {len(task.eval_set)} evaluation scenes, lr {cfg['optimizer']['lr']}")
    print("epoch 0 (untrained): " + " ".join(f"{k}={metrics[k]:.2f}" for k in keys), flush=True)
    for epoch in range(args.epochs):
        start = time.time()
        loss = train_one_epoch(task, model, optimizer, scheduler, epoch, "dense", seed=0).loss
        metrics = task.evaluate(model)
        print(f"epoch {epoch + 1}: loss={loss:.4f} ({time.time() - start:.0f} s) " + " ".join(f"{k}={metrics[k]:.2f}" for k in keys), flush=True)


if __name__ == "__main__":
    main()
