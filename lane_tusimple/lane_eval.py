"""The official TuSimple lane metric (LaneEval of the tusimple-benchmark), re-implemented.

Per image, every ground-truth lane is compared with every predicted lane at the image's
``h_samples``. A point is correct when ``|x_pred - x_gt| < 20 / cos(theta)``, where ``theta``
is the angle of the ground-truth lane (least-squares fit of x against y over its valid points).
Missing points (negative x) of either lane are both set to -100 before comparing, and a lane's
accuracy divides by the number of ``h_samples``. A ground-truth lane is matched when its best
predicted lane reaches 0.85. Per image::

    accuracy = (sum of best accuracies [minus the smallest when there are more than 4 GT lanes])
               / max(min(4, #gt), 1)
    FP = (#pred - #matched) / #pred            (0 when there is no prediction)
    FN = (#unmatched [minus 1 when there are more than 4 GT lanes]) / max(min(4, #gt), 1)

An image whose run time exceeds 200 ms or with more than ``#gt + 2`` predicted lanes scores
(0, 0, 1). The benchmark's three numbers are the per-image values summed and divided by the
number of ground-truth images.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from core.errors import DataError

__all__ = [
    "PIXEL_THRESH", "POINT_THRESH", "MAX_RUN_TIME_MS", "lane_angle", "lane_threshold", "line_accuracy",
    "bench_image", "LaneEvalResult", "LaneEvaluator", "evaluate_json_lines",
]

PIXEL_THRESH = 20.0
POINT_THRESH = 0.85
MAX_RUN_TIME_MS = 200.0
_MISSING = -100.0


def lane_angle(xs: Sequence[float], h_samples: Sequence[float]) -> float:
    """Angle (radians) of the least-squares line ``x = k y + b`` through the lane's valid points; 0 with fewer than 2."""
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(h_samples, dtype=np.float64)
    valid = xs >= 0
    if valid.sum() < 2:
        return 0.0
    x, y = xs[valid], ys[valid]
    dy = y - y.mean()
    denom = float((dy * dy).sum())
    if denom == 0.0:
        return 0.0
    slope = float((dy * (x - x.mean())).sum()) / denom
    return math.atan(slope)


def lane_threshold(gt_xs: Sequence[float], h_samples: Sequence[float], pixel_thresh: float = PIXEL_THRESH) -> float:
    """The pixel threshold of a ground-truth lane, widened by its angle: ``pixel_thresh / cos(theta)``."""
    return pixel_thresh / math.cos(lane_angle(gt_xs, h_samples))


def line_accuracy(pred_xs: Sequence[float], gt_xs: Sequence[float], thresh: float) -> float:
    """Fraction of ``h_samples`` where the two lanes agree within ``thresh`` (missing points count as -100)."""
    pred = np.asarray(pred_xs, dtype=np.float64)
    gt = np.asarray(gt_xs, dtype=np.float64)
    pred = np.where(pred >= 0, pred, _MISSING)
    gt = np.where(gt >= 0, gt, _MISSING)
    return float((np.abs(pred - gt) < thresh).sum()) / len(gt)


def bench_image(pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]], h_samples: Sequence[float],
                run_time_ms: float = 0.0) -> tuple[float, float, float]:
    """Accuracy, FP and FN of one image, with the benchmark's special cases."""
    if any(len(lane) != len(h_samples) for lane in pred):
        raise DataError(f"a predicted lane does not have one x per h_sample ({len(h_samples)}); predict x (or -2) at every h_sample")
    if run_time_ms > MAX_RUN_TIME_MS or len(gt) + 2 < len(pred):
        return 0.0, 0.0, 1.0
    best_accs: list[float] = []
    matched = 0
    unmatched = 0
    for gt_lane in gt:
        thresh = lane_threshold(gt_lane, h_samples)
        best = max((line_accuracy(p, gt_lane, thresh) for p in pred), default=0.0)
        if best < POINT_THRESH:
            unmatched += 1
        else:
            matched += 1
        best_accs.append(best)
    fp = len(pred) - matched
    if len(gt) > 4 and unmatched > 0:
        unmatched -= 1
    total = sum(best_accs)
    if len(gt) > 4:
        total -= min(best_accs)
    denom = max(min(4.0, len(gt)), 1.0)
    return total / denom, (fp / len(pred) if len(pred) > 0 else 0.0), unmatched / denom


@dataclass
class LaneEvalResult:
    """The benchmark's numbers (fractions in [0, 1]) over ``images`` ground-truth images."""

    accuracy: float
    fp: float
    fn: float
    images: int

    def as_percent(self) -> dict[str, float]:
        return {"accuracy": 100.0 * self.accuracy, "fp": 100.0 * self.fp, "fn": 100.0 * self.fn}


@dataclass
class LaneEvaluator:
    """Accumulates per-image scores; :meth:`result` normalises by the number of images."""

    sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    images: int = 0

    def add(self, pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]], h_samples: Sequence[float],
            run_time_ms: float = 0.0) -> tuple[float, float, float]:
        scores = bench_image(pred, gt, h_samples, run_time_ms)
        for i, value in enumerate(scores):
            self.sums[i] += value
        self.images += 1
        return scores

    def result(self) -> LaneEvalResult:
        n = max(self.images, 1)
        return LaneEvalResult(self.sums[0] / n, self.sums[1] / n, self.sums[2] / n, self.images)


def _read_json_lines(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; give a TuSimple json-lines file")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: line {err.lineno} is not JSON; each line must be one TuSimple record") from None


def evaluate_json_lines(pred: str | Path | Iterable[Mapping], gt: str | Path | Iterable[Mapping]) -> LaneEvalResult:
    """Score a prediction file (``raw_file``, ``lanes``, ``run_time``) against a label file, as the benchmark does."""
    preds = _read_json_lines(pred) if isinstance(pred, (str, Path)) else list(pred)
    gts = _read_json_lines(gt) if isinstance(gt, (str, Path)) else list(gt)
    if len(preds) != len(gts):
        raise DataError(f"{len(preds)} predictions for {len(gts)} labelled images; predict every image of the label file")
    by_file = {g["raw_file"]: g for g in gts}
    evaluator = LaneEvaluator()
    for p in preds:
        g = by_file.get(p["raw_file"])
        if g is None:
            raise DataError(f"prediction for {p['raw_file']} has no label; predict only the images of the label file")
        evaluator.add(p["lanes"], g["lanes"], g["h_samples"], float(p.get("run_time", 0.0)))
    evaluator.images = len(gts)
    return evaluator.result()
