"""Prune UFLD on TuSimple with SLR and ADMM: the runs of the paper's Table 4.

    python -m lane_tusimple --profile smoke                          # synthetic TuSimple-format frames, CPU, minutes
    python -m lane_tusimple --profile paper --data-root /data        # <data>/tusimple holds UFLD's tusimple_18.pth too

Each (method, compression rate, seed) run goes through core's pipeline (SLR/ADMM training,
hard-pruning, masked retraining) and writes ``<out>/<method>_<rate>x_seed<seed>/results.json``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import exit_on_user_error
from core.harness import entry
from core.harness.cli import dataset_dir, resolve_data_root

from .synthetic import ensure_synthetic_tusimple
from .task import LaneData, LaneTask, build_datasets

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "ufld_tusimple.yaml"


def tusimple_root(data_root: Path | None) -> Path:
    """The TuSimple folder (clips and label json lines) under ``--data-root`` / ``$DATA_ROOT``: its ``tusimple/``, else itself."""
    return dataset_dir(resolve_data_root(data_root, "TuSimple"), "tusimple")


class LaneEntry(entry.TaskEntry):
    name = "lane_tusimple"
    description = __doc__
    config_dir = CONFIG_DIR
    default_config = "ufld_tusimple"
    data_what = "TuSimple (tusimple/)"

    def needs_data_root(self, settings: dict[str, Any]) -> bool:
        return not settings["data"].get("synthetic") and not settings["data"].get("root")

    def load_data(self, settings: dict[str, Any], root: Path | None, out: Path) -> LaneData:
        synthetic = settings["data"].get("synthetic")
        if synthetic:  # generated beside the runs, never inside a user's data root
            root = ensure_synthetic_tusimple(out / "synthetic_tusimple", int(synthetic["train"]), int(synthetic["test"]),
                                             tuple(synthetic["image_size"]), int(synthetic["seed"]))
        train, test = build_datasets(settings, root)
        return LaneData(root, "tusimple-synthetic" if synthetic else "tusimple", train, test)

    def make_task(self, settings: dict[str, Any], data: LaneData, device, progress: bool) -> LaneTask:
        return LaneTask(settings, data, device, progress=progress)

    def report(self, experiment, runs, results) -> None:
        print("TuSimple accuracy %")
        super().report(experiment, runs, results)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    entry.main(LaneEntry(), argv)


if __name__ == "__main__":
    main()
