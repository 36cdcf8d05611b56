"""SLR vs ADMM on Ultralytics detection models (Table 2, Figure 4): YOLOv3 family, YOLOv8, YOLO11, ...

    python -m detection_yolo --profile smoke                  # generated shapes, CPU, minutes
    python -m detection_yolo --profile paper --data-root /data/coco   # holds coco.yaml (COCO 2014)
    python -m detection_yolo --set dense.yolov3-tiny.checkpoint=dense.pt --method slr
    python -m detection_yolo --model yolov8n.yaml --set dense.epochs=5 --set pruning.epochs=5
    python -m detection_yolo --model runs/detect/train/weights/best.pt --set data=my_data.yaml

Each run writes <out>/<method>_<model>_<rate>x_seed<seed>/results.json (core's schema) and
Ultralytics' own run folders (prune/, retrain/) with their checkpoints beside it.
--model replaces the model of every run: a packaged name or YAML (trained dense here first) or a
trained .pt checkpoint (the dense model itself). pruning.epochs / pruning.retrain_epochs set the
epochs of every run.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import time
from pathlib import Path

from core.harness.cli import ArgumentParser, add_common_args, methods_from_arg, resolve_data_root, set_threads
from core.harness.config import apply_overrides, load_run_config
from core.errors import UserError, exit_on_user_error

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _data_root(arg: Path | None) -> Path | None:
    """``--data-root`` or ``$DATA_ROOT`` (core's rule), else the sample data ``$SLR_DATA_ROOT``, else None."""
    root = resolve_data_root(arg, "detection data", required=False)
    if root is None and os.environ.get("SLR_DATA_ROOT") and Path(os.environ["SLR_DATA_ROOT"]).is_dir():
        root = Path(os.environ["SLR_DATA_ROOT"])
    return root


@contextlib.contextmanager
def _removed_on_user_error(paths: list[Path]):
    """Remove those of ``paths`` that did not exist before when a user error ends the block (the
    checks before training write Ultralytics' config folder, model and data copies): a refused
    run leaves ``--out`` as it was."""
    new = [p for p in paths if not p.exists()]
    try:
        yield
    except UserError:
        for path in new:  # innermost first; --out itself last, and only when it is empty
            if path.is_dir() and (path != paths[-1] or not any(path.iterdir())):
                shutil.rmtree(path, ignore_errors=True)
        raise


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m detection_yolo", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "table2.yaml", help="run config (YAML with profiles)")
    parser.add_argument("--model", default=None,
                        help="every run's model: an Ultralytics detection model name or YAML (yolov3-tiny, yolov8n.yaml, yolo11n.yaml) or a trained .pt")
    args = parser.parse_args(argv)
    config = apply_overrides(load_run_config(args.config, args.profile), args.overrides)
    if args.model:
        config["runs"] = [{**run, "model": str(args.model)} for run in config.get("runs") or []]
    if args.threads is not None:
        config["threads"] = set_threads(args.threads, None)  # the trainers read it from the config
    out = args.out or Path("runs") / args.profile / "detection_yolo"
    data_root = _data_root(args.data_root)
    from .pipeline import check_config  # does not import Ultralytics

    check_config(config, methods_from_arg(args.method))  # config errors end the run before anything is written under --out

    with _removed_on_user_error([out / ".ultralytics", out / "models", out / "data", out]):
        from .ultralytics_env import prepare_ultralytics

        prepare_ultralytics(out / ".ultralytics", threads=int(config.get("threads") or 0), verbose=not args.no_progress)
        from ultralytics.utils import DATASETS_DIR

        from .pipeline import check_models, prepare_data, run_table

        check_models(config, out.resolve())
        data_yaml = prepare_data(config, out.resolve(), data_root, Path(DATASETS_DIR))  # one line per split, even without progress

    started = time.time()
    results = run_table(config, methods_from_arg(args.method), args.seed or [0], out, data_root, resume=args.resume, data_yaml=data_yaml)
    print(f"\n{'model':<13} {'rate':>6} {'method':<6} {'dense':>7} {'trained':>8} {'hard-pruned':>12} {'retrained':>10} {'achieved':>9}   (mAP50, %)")
    for r in results:
        m = r["metrics"]
        print(f"{r['model']:<13} {r['target_compression']:>5g}x {r['method']:<6} {m['dense']['mAP50']:>7.2f} {m['after_training']['mAP50']:>8.2f} "
              f"{m['after_hard_pruning']['mAP50']:>12.2f} {m['after_retraining']['mAP50']:>10.2f} {r['achieved_compression']['pruned_layers']:>8.3f}x")
    print(f"{len(results)} runs in {time.time() - started:.0f} s; results under {out}")


if __name__ == "__main__":
    main()
