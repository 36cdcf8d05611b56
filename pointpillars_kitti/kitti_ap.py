"""KITTI AP for a whole evaluation set at once: the devkit's rules, vectorised over frames.

:mod:`.kitti_eval` states the rules and keeps a literal, frame-by-frame transcription of the
devkit (``evaluate_object_3d_offline.cpp``) as the reference. This module computes the same
numbers without a Python loop over frames, pairs or score thresholds:

- the overlaps of every detection with every label of its frame are computed once per metric
  for all frames together (:class:`PairOverlaps`), DontCare labels included, both as IoU and
  as the part of the detection inside the label (the devkit's ``criterion = 0``);
- for one class, difficulty, metric and threshold only the detections that overlap a relevant
  label by more than the threshold can be assigned; they are gathered per frame into padded
  arrays, and the devkit's greedy assignment runs label by label over all frames and all 41
  score thresholds at once;
- every other counted detection above a threshold is a false positive unless a DontCare
  label holds it, which depends on the detection alone, so those are counted with one sort.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .rotated_iou import camera_bev_corners, quad_intersection

__all__ = ["FrameSet", "PairOverlaps", "ClassRules", "class_rules", "ap_curves", "sample_thresholds", "summarise_curves"]

DIFFICULTIES = ("easy", "moderate", "hard")
MIN_HEIGHT = (40, 25, 25)  # pixels
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
NEIGHBOURS = {"car": "van", "pedestrian": "person_sitting"}
N_SAMPLE_PTS = 41
UNKNOWN_ALPHA = -10.0
_THRESHOLD_CHUNK = 64


@dataclass
class FrameSet:
    """Ground truth and detections of many frames, each kind concatenated with its frame index."""

    gt: dict[str, np.ndarray]
    dt: dict[str, np.ndarray]
    gt_frame: np.ndarray
    dt_frame: np.ndarray
    num_frames: int

    @classmethod
    def build(cls, gts: Sequence[Mapping], dts: Sequence[Mapping]) -> "FrameSet":
        """From per-frame annotation dicts (:func:`kitti_io.labels_to_arrays`), ground truth and detections alike."""
        if len(gts) != len(dts):
            raise ValueError(f"{len(gts)} ground-truth frames but {len(dts)} detection frames")

        def stack(frames: Sequence[Mapping]) -> tuple[dict[str, np.ndarray], np.ndarray]:
            counts = np.array([len(f["name"]) for f in frames], dtype=np.int64)
            out = {"name": np.concatenate([np.char.lower(np.asarray(f["name"], dtype=str)) for f in frames]) if frames else np.zeros(0, str)}
            for key, width in (("bbox", 4), ("dimensions", 3), ("location", 3)):
                out[key] = np.concatenate([np.asarray(f[key], np.float64).reshape(-1, width) for f in frames]) if frames else np.zeros((0, width))
            for key in ("truncated", "occluded", "alpha", "rotation_y", "score"):
                out[key] = np.concatenate([np.asarray(f.get(key, np.zeros(len(f["name"]))), np.float64).reshape(-1) for f in frames]) \
                    if frames else np.zeros(0)
            return out, np.repeat(np.arange(len(frames)), counts)

        gt, gt_frame = stack(gts)
        dt, dt_frame = stack(dts)
        return cls(gt, dt, gt_frame, dt_frame, len(gts))


class PairOverlaps:
    """Every (detection, label) pair of the same frame with its overlaps per metric.

    ``iou[metric]`` is the overlap over the union, ``inside[metric]`` the overlap over the
    detection's own size (2D area, BEV area or volume), which the devkit uses for DontCare.
    """

    def __init__(self, frames: FrameSet, metrics: Sequence[str] = ("bbox", "bev", "3d")) -> None:
        nd = np.bincount(frames.dt_frame, minlength=frames.num_frames)
        ng = np.bincount(frames.gt_frame, minlength=frames.num_frames)
        dt_off = np.concatenate([[0], np.cumsum(nd)[:-1]])
        gt_off = np.concatenate([[0], np.cumsum(ng)[:-1]])
        counts = nd * ng
        self.frame = np.repeat(np.arange(frames.num_frames), counts)
        within = np.arange(int(counts.sum())) - np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        self.dt = dt_off[self.frame] + within // np.maximum(ng[self.frame], 1)
        self.gt = gt_off[self.frame] + within % np.maximum(ng[self.frame], 1)
        self.iou: dict[str, np.ndarray] = {}
        self.inside: dict[str, np.ndarray] = {}
        gt, dt = frames.gt, frames.dt
        if "bbox" in metrics:
            a, b = dt["bbox"][self.dt], gt["bbox"][self.gt]
            iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
            ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
            inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
            self._store("bbox", inter, (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
        if "bev" in metrics or "3d" in metrics:
            def quads(ann: Mapping[str, np.ndarray]) -> np.ndarray:
                return camera_bev_corners(ann["location"][:, 0], ann["location"][:, 2], ann["dimensions"][:, 2],
                                          ann["dimensions"][:, 1], ann["rotation_y"])
            area = quad_intersection(quads(dt)[self.dt], quads(gt)[self.gt])
            dd, gd = dt["dimensions"][self.dt], gt["dimensions"][self.gt]
            if "bev" in metrics:
                self._store("bev", area, np.abs(dd[:, 2] * dd[:, 1]), np.abs(gd[:, 2] * gd[:, 1]))
            if "3d" in metrics:
                dy, gy = dt["location"][self.dt, 1], gt["location"][self.gt, 1]
                height = np.clip(np.minimum(dy, gy) - np.maximum(dy - dd[:, 0], gy - gd[:, 0]), 0, None)
                self._store("3d", area * height, np.prod(dd, axis=1), np.prod(gd, axis=1))

    def _store(self, metric: str, inter: np.ndarray, size_dt: np.ndarray, size_gt: np.ndarray) -> None:
        union = size_dt + size_gt - inter
        self.iou[metric] = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        self.inside[metric] = np.divide(inter, size_dt, out=np.zeros_like(inter), where=size_dt > 0)


@dataclass
class ClassRules:
    """The devkit's ``cleanData`` for one class and difficulty, over all frames.

    ``ignored_gt``: 0 counted, 1 ignored (too hard, or a neighbouring class), -1 another class;
    ``ignored_dt``: 0 counted, 1 ignored (lower than the minimum height, whatever its class),
    -1 another class; ``dontcare`` marks DontCare labels.
    """

    ignored_gt: np.ndarray
    ignored_dt: np.ndarray
    dontcare: np.ndarray
    num_valid: int


def class_rules(frames: FrameSet, cls: str, difficulty: int) -> ClassRules:
    """:class:`ClassRules` of ``cls`` at ``difficulty`` (0 easy, 1 moderate, 2 hard)."""
    cls = cls.lower()
    gt, dt = frames.gt, frames.dt
    height = gt["bbox"][:, 3] - gt["bbox"][:, 1]
    same = gt["name"] == cls
    neighbour = gt["name"] == NEIGHBOURS.get(cls, "\0")
    hard = (gt["occluded"] > MAX_OCCLUSION[difficulty]) | (gt["truncated"] > MAX_TRUNCATION[difficulty]) | (height < MIN_HEIGHT[difficulty])
    ignored_gt = np.where(same & ~hard, 0, np.where(neighbour | same, 1, -1))
    dt_height = np.abs(dt["bbox"][:, 3] - dt["bbox"][:, 1])
    ignored_dt = np.where(dt_height < MIN_HEIGHT[difficulty], 1, np.where(dt["name"] == cls, 0, -1))
    return ClassRules(ignored_gt, ignored_dt, gt["name"] == "dontcare", int((ignored_gt == 0).sum()))


def sample_thresholds(scores: np.ndarray, num_gt: int, num_points: int = N_SAMPLE_PTS) -> np.ndarray:
    """Scores at which recall passes 0, 1/40, 2/40, ... (the devkit's ``getThresholds``)."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    chosen, current, last = [], 0.0, len(scores) - 1
    for i, score in enumerate(scores.tolist()):
        left = (i + 1) / num_gt
        right = (i + 2) / num_gt if i < last else left
        if (right - current) < (current - left) and i < last:
            continue
        chosen.append(score)
        current += 1.0 / (num_points - 1.0)
    return np.asarray(chosen)


@dataclass
class _Padded:
    """The assignable pairs of one class, difficulty, metric and threshold, per frame."""

    overlap: np.ndarray  # (F, D, G), 0 where a pair is not assignable or padded
    score: np.ndarray  # (F, D), -inf for padding
    ignored_dt: np.ndarray  # (F, D), -1 for padding
    no_dontcare: np.ndarray  # (F, D): counted as a false positive when left unassigned
    ignored_gt: np.ndarray  # (F, G), -1 for padding
    gt_alpha: np.ndarray  # (F, G)
    dt_alpha: np.ndarray  # (F, D)
    active: np.ndarray  # (G,) frames (the first rows) that have a g-th label


def _pad(frames: FrameSet, pairs: PairOverlaps, rules: ClassRules, overlap: np.ndarray, keep: np.ndarray,
         no_dontcare: np.ndarray) -> _Padded:
    """Pairs ``keep`` gathered into per-frame arrays, frames ordered by their number of labels (most first)."""
    p_dt, p_gt, p_frame = pairs.dt[keep], pairs.gt[keep], pairs.frame[keep]
    frame_ids, frame_row = np.unique(p_frame, return_inverse=True)
    dts, dt_inv = np.unique(p_dt, return_inverse=True)  # global order is frame-major, then file order
    gts, gt_inv = np.unique(p_gt, return_inverse=True)
    dt_row = np.searchsorted(frame_ids, frames.dt_frame[dts])
    gt_row = np.searchsorted(frame_ids, frames.gt_frame[gts])
    dt_col = np.arange(len(dts)) - np.searchsorted(dt_row, dt_row)  # rank within its frame
    gt_col = np.arange(len(gts)) - np.searchsorted(gt_row, gt_row)
    n_gt = np.bincount(gt_row, minlength=len(frame_ids))
    order = np.argsort(-n_gt, kind="stable")
    row_of = np.empty_like(order)
    row_of[order] = np.arange(len(order))
    f, d, g = len(frame_ids), int(dt_col.max()) + 1, int(gt_col.max()) + 1
    out = _Padded(np.zeros((f, d, g)), np.full((f, d), -np.inf), np.full((f, d), -1), np.zeros((f, d), bool),
                  np.full((f, g), -1), np.zeros((f, g)), np.zeros((f, d)), np.zeros(g, np.int64))
    dr, gr = row_of[dt_row], row_of[gt_row]
    out.score[dr, dt_col] = frames.dt["score"][dts]
    out.ignored_dt[dr, dt_col] = rules.ignored_dt[dts]
    out.no_dontcare[dr, dt_col] = no_dontcare[dts]
    out.dt_alpha[dr, dt_col] = frames.dt["alpha"][dts]
    out.ignored_gt[gr, gt_col] = rules.ignored_gt[gts]
    out.gt_alpha[gr, gt_col] = frames.gt["alpha"][gts]
    out.overlap[row_of[frame_row], dt_col[dt_inv], gt_col[gt_inv]] = overlap[keep]
    out.active = np.array([(n_gt > k).sum() for k in range(g)], dtype=np.int64)
    return out


def _first_pass_scores(p: _Padded, min_overlap: float) -> np.ndarray:
    """Scores of the true positives when every object takes its best-scoring overlapping detection."""
    assigned = np.zeros(p.score.shape, bool)
    found = []
    for g, n in enumerate(p.active):
        cand = ~assigned[:n] & (p.overlap[:n, :, g] > min_overlap)
        has = cand.any(1)
        idx = np.argmax(np.where(cand, p.score[:n], -np.inf), axis=1)  # the first of equal scores
        rows = np.flatnonzero(has)
        cols = idx[rows]
        tp = (p.ignored_gt[rows, g] == 0) & (p.ignored_dt[rows, cols] == 0)
        found.append(p.score[rows[tp], cols[tp]])
        assigned[rows, cols] = True
    return np.concatenate(found) if found else np.zeros(0)


def _second_pass(p: _Padded, min_overlap: float, thresholds: np.ndarray, with_alpha: bool) -> np.ndarray:
    """(T, 4) true positives, assigned counted detections without DontCare, matched valid objects, similarity."""
    out = np.zeros((len(thresholds), 4))
    for start in range(0, len(thresholds), _THRESHOLD_CHUNK):
        thr = thresholds[start:start + _THRESHOLD_CHUNK]
        above = p.score[:, None, :] >= thr[None, :, None]  # (F, T, D)
        assigned = np.zeros(above.shape, bool)
        counted_dt = (p.ignored_dt == 0)[:, None, :]
        stats = out[start:start + len(thr)]
        for g, n in enumerate(p.active):
            ov = p.overlap[:n, :, g][:, None, :]
            cand = above[:n] & ~assigned[:n] & (ov > min_overlap)
            counted = cand & counted_dt[:n]
            best = np.argmax(np.where(counted, ov, -1.0), axis=2)  # the most overlapping counted detection
            first = np.argmax(cand, axis=2)  # else the first ignored one
            idx = np.where(counted.any(2), best, first)
            rows, ts = np.nonzero(cand.any(2))
            cols = idx[rows, ts]
            gi = p.ignored_gt[rows, g]
            tp = (gi == 0) & (p.ignored_dt[rows, cols] == 0)
            np.add.at(stats[:, 0], ts[tp], 1)
            np.add.at(stats[:, 2], ts[gi == 0], 1)
            if with_alpha:
                sim = (1.0 + np.cos(p.gt_alpha[rows[tp], g] - p.dt_alpha[rows[tp], cols[tp]])) / 2.0
                np.add.at(stats[:, 3], ts[tp], sim)
            assigned[rows, ts, cols] = True
        stats[:, 1] = (assigned & counted_dt & p.no_dontcare[:, None, :]).sum(axis=(0, 2))
    return out


def ap_curves(frames: FrameSet, pairs: PairOverlaps, rules: ClassRules, metric: str, min_overlap: float,
              sampling: str = "devkit", with_alpha: bool = False) -> dict[str, np.ndarray] | None:
    """Precision (and orientation similarity) per score threshold, or None without valid ground truth.

    ``sampling="devkit"`` takes the devkit's 41 thresholds; ``"exact"`` every distinct score of
    a true positive (then ``recall`` is returned too).
    """
    if rules.num_valid == 0:
        return None
    overlap = pairs.iou[metric]
    gt_dontcare = rules.dontcare[pairs.gt]
    held = np.zeros(len(frames.dt["score"]), bool)  # detections a DontCare label holds, by this metric's own overlap
    held[pairs.dt[gt_dontcare & (pairs.inside[metric] > min_overlap)]] = True
    no_dontcare = ~held
    keep = (rules.ignored_gt[pairs.gt] != -1) & (rules.ignored_dt[pairs.dt] != -1) & (overlap > min_overlap)
    padded = _pad(frames, pairs, rules, overlap, keep, no_dontcare) if keep.any() else None
    tp_scores = _first_pass_scores(padded, min_overlap) if padded is not None else np.zeros(0)
    if sampling == "devkit":
        thresholds = sample_thresholds(tp_scores, rules.num_valid)
    elif sampling == "exact":
        thresholds = np.unique(tp_scores)[::-1]
    else:
        raise ValueError(f"unknown recall sampling '{sampling}'; use devkit or exact")
    stats = _second_pass(padded, min_overlap, thresholds, with_alpha) if padded is not None else np.zeros((len(thresholds), 4))
    fp_scores = np.sort(frames.dt["score"][(rules.ignored_dt == 0) & no_dontcare])
    above = len(fp_scores) - np.searchsorted(fp_scores, thresholds, side="left")
    tp, fp = stats[:, 0], above - stats[:, 1]
    counted = np.maximum(tp + fp, 1e-12)
    curves = {"precision": tp / counted, "recall": tp / rules.num_valid}
    if with_alpha:
        curves["aos"] = stats[:, 3] / counted
    return curves


def summarise_curves(curves: Mapping[str, np.ndarray] | None, sampling: str = "devkit") -> dict[str, float]:
    """``R11`` and ``R40`` AP in percent (``aos_R11``, ``aos_R40`` with orientations); NaN without valid ground truth."""
    if curves is None:
        return {"R11": float("nan"), "R40": float("nan"), "aos_R11": float("nan"), "aos_R40": float("nan")}
    out: dict[str, float] = {}
    for name, prefix in (("precision", ""), ("aos", "aos_")):
        if name not in curves:
            out[f"{prefix}R11"] = out[f"{prefix}R40"] = float("nan")
            continue
        curve = curves[name]
        if sampling == "devkit":  # precision at threshold i stands for recall i / 40
            sampled = np.zeros(N_SAMPLE_PTS)
            sampled[:min(len(curve), N_SAMPLE_PTS)] = curve[:N_SAMPLE_PTS]
            sampled = np.maximum.accumulate(sampled[::-1])[::-1]
            out[f"{prefix}R11"] = float(sampled[0::4].sum() / 11 * 100)
            out[f"{prefix}R40"] = float(sampled[1:].sum() / 40 * 100)
        else:  # interpolated precision max{p(t) : recall(t) >= r}
            recall = curves["recall"]

            def interpolated(points: np.ndarray) -> float:
                reached = recall[None, :] >= points[:, None] - 1e-12
                return float(np.where(reached, curve[None, :], 0.0).max(axis=1, initial=0.0).mean() * 100)

            out[f"{prefix}R11"] = interpolated(np.linspace(0, 1, 11))
            out[f"{prefix}R40"] = interpolated(np.arange(1, 41) / 40)
    return out
