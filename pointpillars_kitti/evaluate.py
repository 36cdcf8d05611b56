"""KITTI 3D object AP of result files against label files, as the KITTI devkit computes it.

    python -m pointpillars_kitti.evaluate --label-dir KITTI/training/label_2 --result-dir RESULTS [--split FILE] [--json OUT]

Label files: KITTI's label_2 format, 15 fields a line. Result files: the same with the score as
a 16th field, one file per frame with the label file's name; a missing or empty result file is
a frame without detections. Frames: the ids of --split (one a line, e.g. ImageSets/val.txt),
else every .txt file in --label-dir.

Printed and written: R11 and R40 AP (percent) of Car, Pedestrian and Cyclist for the metrics
bbox (2D), bev, 3d and aos (orientation similarity on the 2D matches; NaN when a result has
alpha -10), easy / moderate / hard, at two overlap sets:

  official  the devkit's: 0.7 Car, 0.5 Pedestrian, 0.5 Cyclist for bbox, bev and 3d
  loose     OpenPCDet's second set: bbox as official; bev and 3d at 0.5 / 0.25 / 0.25

--json writes every number, keyed <metric>/<overlap>/<R11|R40>/<Class>/<difficulty>, e.g.
3d/official/R40/Car/moderate; a class without valid ground truth at a difficulty is NaN.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

from core.harness.cli import ArgumentParser
from core.errors import DataError, exit_on_user_error

from .kitti_eval import DIFFICULTIES, KINDS, OVERLAP_SETS, kitti_metrics
from .label_files import read_annotation_file

__all__ = ["CLASSES", "SETS", "frame_list", "load_frames", "evaluate_dirs", "flat_metrics", "format_report", "main"]

CLASSES = ("Car", "Pedestrian", "Cyclist")
SETS = ("official", "loose")


def frame_list(label_dir: Path, split: Path | None) -> list[str]:
    """Frame ids of the split file, else the stems of every ``.txt`` in ``label_dir``."""
    if not label_dir.is_dir():
        raise DataError(f"label folder {label_dir} not found; pass --label-dir KITTI/training/label_2")
    if split is not None:
        if not split.is_file():
            raise DataError(f"split file {split} not found; pass --split a file of frame ids (one a line) or leave it out")
        ids = [line.strip() for line in split.read_text().splitlines() if line.strip()]
    else:
        ids = sorted(p.stem for p in label_dir.glob("*.txt"))
    if not ids:
        raise DataError(f"no frames: {split if split is not None else label_dir} lists no frame ids / holds no .txt label files")
    return ids


def load_frames(label_dir: Path, result_dir: Path, ids: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """Ground truth and detections of every frame; a frame without a result file has no detections."""
    if not result_dir.is_dir():
        raise DataError(f"result folder {result_dir} not found; pass --result-dir a folder of per-frame .txt results")
    gts = [read_annotation_file(label_dir / f"{fid}.txt") for fid in ids]
    dts = [read_annotation_file(result_dir / f"{fid}.txt", result=True, missing_ok=True) for fid in ids]
    return gts, dts


def evaluate_dirs(label_dir: Path, result_dir: Path, split: Path | None = None, sets: Sequence[str] = SETS,
                  classes: Sequence[str] = CLASSES) -> dict[str, float]:
    """Every AP keyed ``<metric>/<overlap>/<R11|R40>/<Class>/<difficulty>``."""
    ids = frame_list(label_dir, split)
    gts, dts = load_frames(label_dir, result_dir, ids)
    return flat_metrics(gts, dts, sets, classes)


def flat_metrics(gts: Sequence[Mapping], dts: Sequence[Mapping], sets: Sequence[str] = SETS,
                 classes: Sequence[str] = CLASSES) -> dict[str, float]:
    """The devkit's AP of annotation arrays, keyed ``<metric>/<overlap>/<R11|R40>/<Class>/<difficulty>``."""
    return {"/".join(key): value for key, value in kitti_metrics(gts, dts, classes, sets, sampling="devkit").items()}


def format_report(metrics: Mapping[str, float], sets: Sequence[str] = SETS, classes: Sequence[str] = CLASSES) -> str:
    """A table per class and overlap set: easy, moderate, hard for each metric, R11 and R40."""
    lines = []
    for set_name in sets:
        for cls in classes:
            thresholds = ", ".join(f"{OVERLAP_SETS[set_name][m].get(cls, 0.5):.2f}" for m in ("bbox", "bev", "3d"))
            lines.append(f"{cls} AP@{thresholds} ({set_name}: bbox, bev, 3d)")
            for kind in KINDS:
                row = [f"  {kind:<5}"]
                for interp in ("R11", "R40"):
                    vals = [metrics[f"{kind}/{set_name}/{interp}/{cls}/{d}"] for d in DIFFICULTIES]
                    row.append(f"{interp}: " + ", ".join("nan" if math.isnan(v) else f"{v:.4f}" for v in vals))
                lines.append("  ".join(row))
    return "\n".join(lines)


def _write_json(path: Path, metrics: Mapping[str, float]) -> None:
    """Atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(dict(metrics), f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m pointpillars_kitti.evaluate", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label-dir", type=Path, required=True, help="KITTI label_2 folder (NNNNNN.txt, 15 fields a line)")
    parser.add_argument("--result-dir", type=Path, required=True, help="result files (NNNNNN.txt, 16 fields, score last)")
    parser.add_argument("--split", type=Path, default=None, help="frame ids, one a line (default: every label file)")
    parser.add_argument("--json", type=Path, default=None, help="write every number here, keyed <metric>/<overlap>/<R11|R40>/<Class>/<difficulty>")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    ids = frame_list(args.label_dir, args.split)
    gts, dts = load_frames(args.label_dir, args.result_dir, ids)
    metrics = flat_metrics(gts, dts)
    elapsed = time.perf_counter() - start
    print(format_report(metrics))
    print(f"{len(ids)} frames, {sum(len(d['name']) for d in dts)} detections, {sum(len(g['name']) for g in gts)} labels; "
          f"{elapsed:.2f} s ({1000 * elapsed / len(ids):.2f} ms per frame)")
    if args.json is not None:
        _write_json(args.json, metrics)
        print(f"wrote {args.json} ({len(metrics)} numbers; NaN: no valid ground truth)")


if __name__ == "__main__":
    main()
