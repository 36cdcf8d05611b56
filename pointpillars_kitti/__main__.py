"""PointPillars on KITTI pruned with SLR and ADMM at the paper's rates (Table 3).

    python -m pointpillars_kitti [--profile smoke|paper] [--data-root DATA_ROOT] [--device cuda] [--set key=value]

The smoke profile generates KITTI-format scenes and finishes in minutes on a CPU; the paper
profile reads ``<data-root>/kitti/training`` and ``<data-root>/kitti/ImageSets/{train,val}.txt``
(or the same under ``<data-root>`` itself). Without ``dense.checkpoint`` it first trains the dense
model on OpenPCDet's schedule (``dense.epochs``: 80, one-cycle Adam at 0.003) and caches it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import ConfigError, exit_on_user_error
from core.harness import entry
from core.harness.cli import dataset_dir, resolve_data_root

from .synthetic import generate_kitti_scenes
from .task import KittiTask, load_kitti_data

_EMH = ("easy", "moderate", "hard")


def kitti_root(data_root: Path | None) -> Path:
    """The KITTI object folder (holding ``training/`` and ``ImageSets/``) under ``--data-root`` / ``$DATA_ROOT``."""
    return dataset_dir(resolve_data_root(data_root, "KITTI object (kitti/training/, kitti/ImageSets/)"), "kitti")


class KittiEntry(entry.TaskEntry):
    name = "pointpillars_kitti"
    description = __doc__
    config_dir = Path(__file__).resolve().parent / "configs"
    default_config = "pointpillars"
    data_what = "KITTI object (kitti/training/, kitti/ImageSets/)"

    def needs_data_root(self, settings: dict[str, Any]) -> bool:
        source = settings["data"]["source"]
        if source not in ("kitti", "synthetic"):
            raise ConfigError(f"data.source '{source}' is unknown; use kitti or synthetic")
        return source == "kitti" and not settings["data"].get("root")

    def load_data(self, settings: dict[str, Any], root: Path | None, out: Path):
        data = settings["data"]
        if data["source"] == "synthetic":  # generated beside the runs, never inside a user's data root
            root = generate_kitti_scenes(out / "synthetic_kitti", int(data["num_train_scenes"]), int(data["num_eval_scenes"]),
                                         int(data.get("synthetic_seed", 0)), float(data.get("max_range", 30.0)))
        return load_kitti_data(settings, root)

    def make_task(self, settings: dict[str, Any], data, device, progress: bool) -> KittiTask:
        return KittiTask(settings, data, device, progress=progress)

    def report(self, experiment, runs, results) -> None:
        print(f"{'run':<22} {'dense':>7} {'hard-pruned (E/M/H)':>22} {'retrained (E/M/H)':>22} {'rate':>7}")
        for r in results:
            m = r["metrics"]

            def emh(stage: str) -> str:
                return "/".join(f"{float(m[stage][f'3d_iou05_R11_mAP_{d}']):.1f}" for d in _EMH)

            print(f"{r['method'] + ' ' + format(r['target_compression'], 'g') + 'x':<22} {float(m['dense'][r['primary_metric']]):>7.1f} "
                  f"{emh('after_hard_pruning'):>22} {emh('after_retraining'):>22} {r['achieved_compression']['pruned_layers']:>6.2f}x")
        print("(3D mAP at IoU 0.5, R11; every metric is in the results files)")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    entry.main(KittiEntry(), argv)


if __name__ == "__main__":
    main()
