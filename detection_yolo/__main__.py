"""SLR vs ADMM on Ultralytics detection models (Table 2, Figure 4): YOLOv3 family, YOLOv8, YOLO11, ...

    python -m detection_yolo --profile smoke                  # generated shapes, CPU, minutes
    python -m detection_yolo --profile paper --data-root /data   # holds coco/coco.yaml (COCO 2014)
    python -m detection_yolo --experiment yolov3-tiny_2x --dense-checkpoint dense.pt --method slr
    python -m detection_yolo --model yolov8n.yaml --experiment yolov3-tiny_2x --set dense.epochs=5 --set pruning.epochs=5
    python -m detection_yolo --model runs/detect/train/weights/best.pt --set data.yaml=/data/my_data.yaml

Each run writes <out>/<experiment>/<method>_<rate>x_seed<seed>/results.json (core's schema) and
Ultralytics' own run folders (prune/, retrain/) with their checkpoints beside it; dense models
trained here are cached in --dense-dir (default <out>/../dense) and shared by every run.
--model MODEL (this task's own option) replaces the model of every experiment: a packaged name
or YAML (trained dense here first) or a trained .pt checkpoint (the dense model itself); the
experiments keep their names, rates and schedules. --device cpu / cuda:N becomes Ultralytics'
device "cpu" / "N". --set pruning.epochs=5 sets the epochs of every experiment.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from core.errors import UserError, exit_on_user_error
from core.harness import entry

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
USAGE = __doc__


class YoloEntry(entry.TaskEntry):
    """The driver's view of detection_yolo: Ultralytics owns the training loop, so
    :meth:`run_experiment` runs the pipeline's stages instead of core's grid."""

    name = "detection_yolo"
    description = USAGE
    config_dir = CONFIG_DIR
    default_config = "table2"
    data_what = "the detection data (a folder holding coco/coco.yaml or coco128/)"

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress
        self.dense_models: dict[str, Any] = {}  # shared by the experiments of one command
        self.training_started = False
        self.created: list[Path] = []  # folders made while preparing, innermost first

    def _note_new(self, paths: list[Path]) -> None:
        """Remember those of ``paths`` that do not exist yet (about to be made)."""
        self.created += [p for p in paths if not p.exists() and p not in self.created]

    def _started(self) -> None:
        self.training_started = True

    def remove_prepared(self) -> None:
        """Remove what preparing wrote (Ultralytics' config folder, data and model copies) when a
        user error ends the command before any training: a refused run leaves ``--out`` as it was."""
        if self.training_started:
            return
        _remove(self.created)

    def needs_data_root(self, settings: dict[str, Any]) -> bool:
        from .pipeline import needs_data_root

        return needs_data_root(settings.get("data") or {})

    def load_data(self, settings: dict[str, Any], root: Path | None, out: Path):
        """The checked data YAML (one line per split, even without progress), prepared under ``out/data``."""
        out = Path(out).resolve()
        self._note_new([out / ".ultralytics", out / "data", out])
        from .ultralytics_env import prepare_ultralytics

        prepare_ultralytics(out / ".ultralytics", verbose=self.progress)  # threads: the driver's setting
        from ultralytics.utils import DATASETS_DIR

        from .pipeline import YoloData, prepare_data

        data = settings.get("data") or {}
        if data.get("root"):
            root = Path(str(data["root"])).expanduser()
        path = prepare_data(data, out, root, Path(DATASETS_DIR))
        return YoloData(path, {"data": data, "root": None if root is None else str(root)})

    def run_experiment(self, experiment, runs, out: Path, data, device, args: argparse.Namespace, dense_dir: Path) -> list[dict[str, Any]]:
        """The Ultralytics stages (pipeline.run_experiment) for each run of ``runs``."""
        from .pipeline import check_experiment, run_experiment

        settings = experiment.settings
        out = Path(out).resolve()
        threads = args.threads if args.threads is not None else int(settings.get("threads") or 0)
        new = [p for p in (out / "models", out) if not p.exists()]
        try:
            model = check_experiment(settings, runs, out, data.yaml, device)
        except UserError:
            _remove(new)
            raise
        self.created += [p for p in new if p not in self.created]
        return run_experiment(settings, runs, out, data, Path(dense_dir).resolve(), device, threads, resume=args.resume,
                              dense_models=self.dense_models, model=model, started=self._started, max_batches=args.max_batches)

    def report(self, experiment, runs, results) -> None:
        print(f"\n{'experiment':<20} {'model':<13} {'rate':>6} {'method':<6} {'dense':>7} {'trained':>8} {'hard-pruned':>12} "
              f"{'retrained':>10} {'achieved':>9}   (mAP50, %)")
        for r in results:
            m = r["metrics"]
            print(f"{experiment.name or '-':<20} {r['model']:<13} {r['target_compression']:>5g}x {r['method']:<6} {m['dense']['mAP50']:>7.2f} "
                  f"{m['after_training']['mAP50']:>8.2f} {m['after_hard_pruning']['mAP50']:>12.2f} {m['after_retraining']['mAP50']:>10.2f} "
                  f"{r['achieved_compression']['pruned_layers']:>8.3f}x")


def _remove(paths: list[Path]) -> None:
    """Remove the folders ``paths``, innermost first; the outermost only when it is then empty."""
    paths = sorted(paths, key=lambda p: len(p.parts), reverse=True)
    for path in paths:
        if path.is_dir() and (path != paths[-1] or not any(path.iterdir())):
            shutil.rmtree(path, ignore_errors=True)


def split_model_arg(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` with ``--model MODEL`` turned into an override of every experiment's model
    (first, so that ``--set model.width_multiple=...`` still applies), and whether progress is shown."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--model", default=None)
    known, rest = parser.parse_known_args(argv)
    if known.model:
        rest = ["--set", "model=" + json.dumps({"name": str(known.model)}), *rest]
    return rest, "--no-progress" not in rest


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    import sys

    argv, progress = split_model_arg(list(sys.argv[1:] if argv is None else argv))
    yolo = YoloEntry(progress=progress)
    try:
        entry.main(yolo, argv)
    except UserError:
        yolo.remove_prepared()
        raise


if __name__ == "__main__":
    main()
