"""KITTI object detection AP as the official devkit defines it.

For each class, difficulty and overlap metric (2D image box, bird's eye view, 3D):

- ground truth of the class that is too small, occluded or truncated for the difficulty is
  *ignored* (neither a miss nor a hit); neighbouring classes (Van for Car, Person_sitting for
  Pedestrian) are ignored too, and detections matched to ignored objects count as nothing;
- detections whose 2D box is lower than the difficulty's minimum height are ignored;
- unmatched detections that a DontCare label holds are not false positives; "holds" is the
  metric's own overlap over the detection's size (2D area, BEV area, volume) above the
  threshold, as the devkit computes it. A DontCare label's 3D fields are dummies (location
  -1000, dimensions -1), so in BEV and 3D no detection is ever held;
- 41 score thresholds are picked so the recall steps evenly; precision is made monotone and
  averaged at 11 recall points (R11: 0, 0.1, ..., 1) or 40 (R40: 1/40, ..., 1);
- AOS (average orientation similarity) is computed on the 2D boxes only, over the same matches
  and thresholds: at each threshold the orientation similarity is the sum of
  ``(1 + cos(alpha_gt - alpha_dt)) / 2`` over the true positives divided by the number of
  counted detections (true plus false positives), made monotone and averaged like precision,
  so AOS <= AP, with equality when every matched orientation is right.

The recall sampling is an option (see :func:`average_precision`). Ground truth lower than the
minimum height is ignored when its height is below it (the C++ devkit's ``<``; the Python port
uses ``<=``). Boxes turn as in the devkit (:mod:`.rotated_iou`).

:func:`evaluate_kitti` computes every number with the vectorised engine of :mod:`.kitti_ap`;
:func:`clean_frame`, :func:`match_frame` and :func:`average_precision` transcribe the devkit
frame by frame and threshold by threshold, slowly, as the reference the tests hold it to.

Overlap sets (``OVERLAP_SETS``): ``official`` is the devkit's (Car 0.7, Pedestrian and Cyclist
0.5 for 2D, BEV and 3D); ``loose`` is OpenPCDet's second set (2D as official, BEV and 3D at
0.5 / 0.25 / 0.25); ``iou05`` is 0.5 for every class and metric (the paper's Table 3).

Annotations are dicts of column arrays as :func:`kitti_io.labels_to_arrays` returns them.
"""
from __future__ import annotations

from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from .kitti_ap import (DIFFICULTIES, MAX_OCCLUSION, MAX_TRUNCATION, MIN_HEIGHT, N_SAMPLE_PTS, NEIGHBOURS, UNKNOWN_ALPHA,
                      FrameSet, PairOverlaps, ap_curves, class_rules, sample_thresholds, summarise_curves)
from .rotated_iou import box3d_overlap, camera_bev_overlap, image_box_iou

__all__ = ["DIFFICULTIES", "MIN_HEIGHT", "MAX_OCCLUSION", "MAX_TRUNCATION", "OFFICIAL_MIN_OVERLAP", "LOOSE_MIN_OVERLAP",
           "OVERLAP_SETS", "METRICS", "KINDS", "FrameStats", "clean_frame", "frame_overlaps", "match_frame", "sample_thresholds",
           "average_precision", "kitti_metrics", "evaluate_kitti"]

METRICS = ("bbox", "bev", "3d")
KINDS = ("bbox", "bev", "3d", "aos")  # AOS rides on the 2D matches
OFFICIAL_MIN_OVERLAP = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5, "Van": 0.7, "Truck": 0.7, "Person_sitting": 0.5, "Tram": 0.7}
LOOSE_MIN_OVERLAP = {"Car": 0.5, "Pedestrian": 0.25, "Cyclist": 0.25, "Van": 0.5, "Truck": 0.5, "Person_sitting": 0.25, "Tram": 0.5}
OVERLAP_SETS: dict[str, dict[str, dict[str, float]]] = {
    "official": {"bbox": OFFICIAL_MIN_OVERLAP, "bev": OFFICIAL_MIN_OVERLAP, "3d": OFFICIAL_MIN_OVERLAP},
    "loose": {"bbox": OFFICIAL_MIN_OVERLAP, "bev": LOOSE_MIN_OVERLAP, "3d": LOOSE_MIN_OVERLAP},
    "iou05": {m: {c: 0.5 for c in OFFICIAL_MIN_OVERLAP} for m in METRICS},
}


class FrameStats(NamedTuple):
    """Counts of one frame at one score threshold; ``similarity`` sums the true positives' orientation similarity."""

    tp: int
    fp: int
    fn: int
    tp_scores: np.ndarray
    similarity: float


def clean_frame(gt: Mapping, dt: Mapping, cls: str, difficulty: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``ignored_gt``, ``ignored_dt`` (0 counted, 1 ignored, -1 other class), DontCare boxes, and the count of valid gt."""
    cls = cls.lower()
    gt_names = [str(n).lower() for n in gt["name"]]
    heights = gt["bbox"][:, 3] - gt["bbox"][:, 1] if len(gt_names) else np.zeros(0)
    ignored_gt = np.full(len(gt_names), -1, dtype=np.int64)
    for i, name in enumerate(gt_names):
        valid = 1 if name == cls else (0 if NEIGHBOURS.get(cls) == name else -1)
        hard = (gt["occluded"][i] > MAX_OCCLUSION[difficulty] or gt["truncated"][i] > MAX_TRUNCATION[difficulty]
                or heights[i] < MIN_HEIGHT[difficulty])
        if valid == 1 and not hard:
            ignored_gt[i] = 0
        elif valid == 0 or (valid == 1 and hard):
            ignored_gt[i] = 1
    dc = gt["bbox"][np.array([n == "dontcare" for n in gt_names], dtype=bool)] if len(gt_names) else np.zeros((0, 4))
    dt_names = [str(n).lower() for n in dt["name"]]
    ignored_dt = np.full(len(dt_names), -1, dtype=np.int64)
    for j, name in enumerate(dt_names):
        height = abs(dt["bbox"][j, 3] - dt["bbox"][j, 1])
        if height < MIN_HEIGHT[difficulty]:
            ignored_dt[j] = 1
        elif name == cls:
            ignored_dt[j] = 0
    return ignored_gt, ignored_dt, dc.reshape(-1, 4), int((ignored_gt == 0).sum())


def frame_overlaps(gt: Mapping, dt: Mapping, metric: str, criterion: int = -1) -> np.ndarray:
    """(n_dt, n_gt) overlaps: 2D, BEV (camera x-z plane) or 3D; IoU, or over the detection's size (``criterion=0``)."""
    if metric == "bbox":
        return image_box_iou(dt["bbox"], gt["bbox"], criterion)
    if metric == "bev":
        return camera_bev_overlap(dt["location"], dt["dimensions"], dt["rotation_y"], gt["location"], gt["dimensions"], gt["rotation_y"], criterion)
    if metric == "3d":
        return box3d_overlap(dt["location"], dt["dimensions"], dt["rotation_y"], gt["location"], gt["dimensions"], gt["rotation_y"], criterion)
    raise ValueError(f"unknown metric {metric}; use one of {METRICS}")


def dontcare_overlaps(gt: Mapping, dt: Mapping, metric: str) -> np.ndarray:
    """(n_dt, n_dontcare) part of each detection inside each DontCare label, by the metric's own overlap (the devkit's rule)."""
    names = np.array([str(n).lower() for n in gt["name"]], dtype=object)
    dc = {k: np.asarray(v)[names == "dontcare"] for k, v in gt.items() if k in ("name", "bbox", "location", "dimensions", "rotation_y")}
    if len(dc["name"]) == 0:
        return np.zeros((len(dt["name"]), 0))
    return frame_overlaps(dc, dt, metric, criterion=0)


def match_frame(overlaps: np.ndarray, dt_scores: np.ndarray, ignored_gt: np.ndarray, ignored_dt: np.ndarray,
                dc_overlaps: np.ndarray, min_overlap: float, thresh: float = 0.0, compute_fp: bool = False,
                gt_alpha: np.ndarray | None = None, dt_alpha: np.ndarray | None = None) -> FrameStats:
    """True positives, false positives, misses, the scores of the true positives and their orientation similarity.

    ``overlaps`` is (n_dt, n_gt); ``dc_overlaps`` (n_dt, n_dontcare) is the part of each
    detection's 2D box inside each DontCare box. Without ``compute_fp`` each object takes its
    highest-scoring overlapping detection (the pass that collects scores); with it, the most
    overlapping one among detections scoring at least ``thresh``. With ``gt_alpha`` and
    ``dt_alpha`` (observation angles) ``similarity`` is the sum of ``(1 + cos(dalpha)) / 2``
    over the true positives (false positives add 0); otherwise it is 0.
    """
    n_dt, n_gt = overlaps.shape
    assigned = np.zeros(n_dt, dtype=bool)
    below = dt_scores < thresh if compute_fp else np.zeros(n_dt, dtype=bool)
    tp = fp = fn = 0
    tp_scores = []
    similarity = 0.0
    with_alpha = gt_alpha is not None and dt_alpha is not None
    for i in range(n_gt):
        if ignored_gt[i] == -1:
            continue
        cand = (ignored_dt != -1) & ~assigned & ~below & (overlaps[:, i] > min_overlap)
        det_idx = -1
        if not compute_fp:
            if cand.any():  # highest score; the first of equal scores
                det_idx = int(np.flatnonzero(cand)[np.argmax(dt_scores[cand])])
        else:
            counted = cand & (ignored_dt == 0)
            if counted.any():  # most overlapping counted detection, else the first ignored one
                det_idx = int(np.flatnonzero(counted)[np.argmax(overlaps[counted, i])])
            elif cand.any():
                det_idx = int(np.flatnonzero(cand)[0])
        if det_idx < 0:
            if ignored_gt[i] == 0:
                fn += 1
        elif ignored_gt[i] == 1 or ignored_dt[det_idx] == 1:
            assigned[det_idx] = True
        else:
            tp += 1
            tp_scores.append(dt_scores[det_idx])
            if with_alpha:
                similarity += (1.0 + np.cos(gt_alpha[i] - dt_alpha[det_idx])) / 2.0
            assigned[det_idx] = True
    if compute_fp:
        eligible = ~(assigned | (ignored_dt != 0) | below)
        fp = int(eligible.sum())
        for k in range(dc_overlaps.shape[1]):  # unmatched detections inside DontCare regions are not false positives
            hit = eligible & (dc_overlaps[:, k] > min_overlap)
            eligible &= ~hit
            fp -= int(hit.sum())
    return FrameStats(tp, fp, fn, np.asarray(tp_scores, dtype=np.float64), float(similarity))


def average_precision(gts: Sequence[Mapping], dts: Sequence[Mapping], cls: str, difficulty: int, metric: str,
                      min_overlap: float, sampling: str = "devkit",
                      overlaps: Sequence[np.ndarray] | None = None, compute_aos: bool = False) -> dict[str, float]:
    """``{"R11": ap, "R40": ap, "num_gt": n}`` (AP in percent) of one class, difficulty, metric and threshold.

    ``sampling="devkit"`` picks 41 score thresholds as the devkit does and reads precision at
    threshold index i as the precision at recall i/40, which holds only with at least 40 valid
    objects (fewer objects understate AP: two perfectly found objects score R11 = 9.09).
    ``sampling="exact"`` evaluates every score of a true positive and takes the interpolated
    precision ``max{precision(t) : recall(t) >= r}`` at each recall point r; the two agree on
    large sets, and ``exact`` is right on small ones (the smoke profile, tests).

    ``compute_aos`` adds ``"aos_R11"`` and ``"aos_R40"``: the average orientation similarity
    (percent) over the same thresholds and recall points, from the annotations' ``alpha``
    (the devkit computes it for ``metric="bbox"`` only).
    """
    frames = []
    all_scores, num_gt = [], 0
    if overlaps is None:
        overlaps = [frame_overlaps(gt, dt, metric) for gt, dt in zip(gts, dts, strict=True)]
    for gt, dt, frame_ov in zip(gts, dts, overlaps, strict=True):
        ignored_gt, ignored_dt, dc, n_valid = clean_frame(gt, dt, cls, difficulty)
        dc_overlaps = dontcare_overlaps(gt, dt, metric)
        scores = np.asarray(dt["score"], dtype=np.float64)
        alphas = (np.asarray(gt["alpha"], dtype=np.float64), np.asarray(dt["alpha"], dtype=np.float64)) if compute_aos else (None, None)
        tp_scores = match_frame(frame_ov, scores, ignored_gt, ignored_dt, dc_overlaps, min_overlap).tp_scores
        frames.append((frame_ov, scores, ignored_gt, ignored_dt, dc_overlaps, alphas))
        all_scores.append(tp_scores)
        num_gt += n_valid
    if num_gt == 0:
        empty = {"R11": float("nan"), "R40": float("nan"), "num_gt": 0}
        return {**empty, "aos_R11": float("nan"), "aos_R40": float("nan")} if compute_aos else empty
    tp_scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    if sampling == "devkit":
        thresholds = sample_thresholds(tp_scores, num_gt)
    elif sampling == "exact":
        thresholds = np.unique(tp_scores)[::-1]
    else:
        raise ValueError(f"unknown recall sampling '{sampling}'; use devkit or exact")
    stats = np.zeros((len(thresholds), 4))  # tp, fp, fn, orientation similarity
    for ov, scores, ignored_gt, ignored_dt, dc_overlaps, (gt_alpha, dt_alpha) in frames:
        for t, thresh in enumerate(thresholds):
            frame = match_frame(ov, scores, ignored_gt, ignored_dt, dc_overlaps, min_overlap=min_overlap, thresh=thresh,
                                compute_fp=True, gt_alpha=gt_alpha, dt_alpha=dt_alpha)
            stats[t] += (frame.tp, frame.fp, frame.fn, frame.similarity)
    counted = np.maximum(stats[:, 0] + stats[:, 1], 1e-12)
    curves = {"": stats[:, 0] / counted}
    if compute_aos:
        curves["aos_"] = stats[:, 3] / counted  # the devkit's aos[t] = similarity / (tp + fp)
    out: dict[str, float] = {}
    if sampling == "devkit":
        for prefix, curve in curves.items():
            sampled = np.zeros(N_SAMPLE_PTS)
            sampled[:len(thresholds)] = curve[:N_SAMPLE_PTS]
            sampled = np.maximum.accumulate(sampled[::-1])[::-1]
            out[f"{prefix}R11"] = float(sampled[0::4].sum() / 11 * 100)
            out[f"{prefix}R40"] = float(sampled[1:].sum() / 40 * 100)
    else:
        recall = stats[:, 0] / num_gt

        def interpolated(curve: np.ndarray, points: np.ndarray) -> float:
            return float(np.mean([curve[recall >= r - 1e-12].max() if (recall >= r - 1e-12).any() else 0.0 for r in points]) * 100)

        for prefix, curve in curves.items():
            out[f"{prefix}R11"] = interpolated(curve, np.linspace(0, 1, 11))
            out[f"{prefix}R40"] = interpolated(curve, np.arange(1, 41) / 40)
    return {"R11": out["R11"], "R40": out["R40"], "num_gt": num_gt, **{k: v for k, v in out.items() if k.startswith("aos_")}}


def _has_orientation(dts: Sequence[Mapping]) -> bool:
    """Whether the detections carry observation angles (the devkit skips AOS when an alpha is -10)."""
    return all("alpha" in dt for dt in dts) and not any(np.any(np.asarray(dt["alpha"]) == UNKNOWN_ALPHA) for dt in dts)


def kitti_metrics(gts: Sequence[Mapping], dts: Sequence[Mapping], classes: Iterable[str],
                  overlap_sets: Iterable[str] | Mapping[str, Mapping[str, Mapping[str, float]]] = ("official", "loose"),
                  sampling: str = "devkit") -> dict[tuple[str, str, str, str, str], float]:
    """``{(kind, set, R11|R40, class, difficulty): AP}`` in percent for kinds bbox, bev, 3d and aos.

    ``overlap_sets`` names sets of ``OVERLAP_SETS`` or maps names to ``{metric: {class: threshold}}``.
    A class without valid ground truth at a difficulty is NaN; AOS is NaN when a detection has
    no orientation (alpha -10).
    """
    classes = list(classes)
    sets = {name: OVERLAP_SETS[name] for name in overlap_sets} if not isinstance(overlap_sets, Mapping) else dict(overlap_sets)
    frames = FrameSet.build(gts, dts)
    pairs = PairOverlaps(frames)
    with_aos = _has_orientation(dts)
    cache: dict[tuple, dict[str, float]] = {}
    out: dict[tuple[str, str, str, str, str], float] = {}
    for d, diff in enumerate(DIFFICULTIES):
        for cls in classes:
            rules = class_rules(frames, cls, d)
            for set_name, per_metric in sets.items():
                for metric in METRICS:
                    threshold = float(per_metric[metric].get(cls, 0.5))
                    key = (cls, d, metric, threshold)
                    if key not in cache:
                        curves = ap_curves(frames, pairs, rules, metric, threshold, sampling, with_alpha=metric == "bbox" and with_aos)
                        cache[key] = summarise_curves(curves, sampling)
                    for interp in ("R11", "R40"):
                        out[(metric, set_name, interp, cls, diff)] = cache[key][interp]
                        if metric == "bbox":
                            out[("aos", set_name, interp, cls, diff)] = cache[key][f"aos_{interp}"]
    return out


def evaluate_kitti(gts: Sequence[Mapping], dts: Sequence[Mapping], classes: Iterable[str],
                   overlap_sets: Iterable[str] | Mapping[str, Mapping[str, Mapping[str, float]]] = ("official", "loose", "iou05"),
                   sampling: str = "devkit") -> dict[str, float]:
    """Flat metrics ``<kind>_<set>_<R11|R40>_<class|mAP>_<difficulty>`` in percent (the task's results files).

    ``mAP`` is the mean over classes that have valid ground truth at that difficulty; NaN when
    none has. Beside the 2D ``bbox`` keys, ``aos_...`` keys hold the average orientation
    similarity of the same 2D matches (NaN when the detections carry no alpha).
    """
    classes = list(classes)
    nested = kitti_metrics(gts, dts, classes, overlap_sets, sampling)
    out: dict[str, float] = {}
    groups: dict[tuple[str, str, str, str], list[float]] = {}
    for (kind, set_name, interp, cls, diff), value in nested.items():
        out[f"{kind}_{set_name}_{interp}_{cls}_{diff}"] = value
        groups.setdefault((kind, set_name, interp, diff), [])
        if not np.isnan(nested[("bbox", set_name, interp, cls, diff)]):  # the class has valid ground truth
            groups[(kind, set_name, interp, diff)].append(value)
    for (kind, set_name, interp, diff), values in groups.items():
        out[f"{kind}_{set_name}_{interp}_mAP_{diff}"] = float(np.mean(values)) if values else float("nan")
    return out
