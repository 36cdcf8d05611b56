"""TuSimple labels: the json-lines records and their conversion to UFLD's row-anchor targets.

A record is one labelled frame: ``raw_file`` (the image path under the data root, e.g.
``clips/0313-1/6040/20.jpg``), ``h_samples`` (the label rows, in image pixels) and ``lanes``
(one list per lane with the x of the lane at each ``h_sample``, -2 where the lane is absent).

UFLD predicts, for each of 4 lane slots and each of 56 row anchors (rows 64, 68, ..., 284 of a
288-row image), which of 100 horizontal grid cells the lane crosses, or a 101st "no lane" class.
Slots are ordered left to right around the ego lane: the two nearest lanes left of the image
centre take slots 1 and 0, the two nearest on the right slots 2 and 3.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from core.errors import DataError

__all__ = [
    "TUSIMPLE_ROW_ANCHORS", "GRIDING_NUM", "NUM_LANES", "LaneRecord", "read_label_file", "read_label_files",
    "lane_x_at", "order_lanes", "row_anchor_targets", "segmentation_target", "cell_width",
]

TUSIMPLE_ROW_ANCHORS: tuple[int, ...] = tuple(range(64, 288, 4))  # 56 rows of the 288-row input
ANCHOR_SPACE_HEIGHT = 288
GRIDING_NUM = 100
NUM_LANES = 4


@dataclass
class LaneRecord:
    """One labelled TuSimple frame."""

    raw_file: str
    lanes: list[list[float]]
    h_samples: list[float]


_RECORD_KEYS = ("lanes", "h_samples", "raw_file")


def _numbers(values: object) -> list[float] | None:
    """``values`` as floats, or None when it is not a list of numbers."""
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    return [float(v) for v in values]


def _record(data: object, where: str) -> LaneRecord:
    fix = "fix or remove that line"
    if not isinstance(data, dict):
        raise DataError(f"{where}: a TuSimple record is a JSON object with {', '.join(_RECORD_KEYS)}; {fix}")
    missing = [key for key in _RECORD_KEYS if key not in data]
    if missing:
        raise DataError(f"{where}: the record has no {' or '.join(repr(k) for k in missing)} "
                        f"(a TuSimple record needs {', '.join(_RECORD_KEYS)}); {fix}")
    h_samples = _numbers(data["h_samples"])
    if h_samples is None:
        raise DataError(f"{where}: 'h_samples' must be a list of row numbers (pixels); {fix}")
    if not isinstance(data["lanes"], list) or any(_numbers(lane) is None for lane in data["lanes"]):
        raise DataError(f"{where}: 'lanes' must be a list of lanes, each a list of x values (-2 where absent); {fix}")
    lanes = [_numbers(lane) for lane in data["lanes"]]
    for i, lane in enumerate(lanes):
        if len(lane) != len(h_samples):
            raise DataError(f"{where}: lane {i} has {len(lane)} points for {len(h_samples)} h_samples; "
                            f"each lane needs one x per h_sample: {fix}")
    if not isinstance(data["raw_file"], str) or not data["raw_file"]:
        raise DataError(f"{where}: 'raw_file' must be the image path under the data root, e.g. clips/0313-1/6040/20.jpg; {fix}")
    return LaneRecord(data["raw_file"], lanes, h_samples)


def read_label_file(path: str | Path) -> list[LaneRecord]:
    """The records of one TuSimple json-lines label file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label file {path} does not exist; check --data-root and the config's label files")
    records = []
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{path}:{number} is not JSON (a label file has one TuSimple record per line); fix or remove that line") from None
            records.append(_record(data, f"{path}:{number}"))
    return records


def read_label_files(paths: Iterable[str | Path]) -> list[LaneRecord]:
    records: list[LaneRecord] = []
    for path in paths:
        records += read_label_file(path)
    return records


def lane_x_at(xs: Sequence[float], h_samples: Sequence[float], ys: Sequence[float]) -> np.ndarray:
    """x of the lane at rows ``ys`` by linear interpolation between its labelled points; -1 outside them."""
    xs = np.asarray(xs, dtype=np.float64)
    hs = np.asarray(h_samples, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    valid = xs >= 0
    out = np.full(ys.shape, -1.0)
    if valid.sum() == 0:
        return out
    vx, vy = xs[valid], hs[valid]
    order = np.argsort(vy)
    vx, vy = vx[order], vy[order]
    inside = (ys >= vy[0]) & (ys <= vy[-1])
    out[inside] = np.interp(ys[inside], vy, vx)
    return out


def _bottom_x(xs: np.ndarray, hs: np.ndarray, height: float) -> float:
    """x where the lane's least-squares line meets the bottom row of the image."""
    valid = xs >= 0
    if valid.sum() == 1:
        return float(xs[valid][0])
    slope, intercept = np.polyfit(hs[valid], xs[valid], 1)
    return float(slope * (height - 1) + intercept)


def order_lanes(record: LaneRecord, image_width: int, image_height: int, num_lanes: int = NUM_LANES) -> list[list[float] | None]:
    """The record's lanes placed in ``num_lanes`` slots around the ego lane (``None`` for an empty slot)."""
    hs = np.asarray(record.h_samples, dtype=np.float64)
    half = num_lanes // 2
    left, right = [], []
    for lane in record.lanes:
        xs = np.asarray(lane, dtype=np.float64)
        if (xs >= 0).sum() < 2:
            continue
        x = _bottom_x(xs, hs, image_height)
        (left if x < image_width / 2 else right).append((x, lane))
    left.sort(key=lambda item: -item[0])  # nearest to the centre first
    right.sort(key=lambda item: item[0])
    slots: list[list[float] | None] = [None] * num_lanes
    for i, (_, lane) in enumerate(left[:half]):
        slots[half - 1 - i] = lane
    for i, (_, lane) in enumerate(right[: num_lanes - half]):
        slots[half + i] = lane
    return slots


def cell_width(image_width: int, griding_num: int = GRIDING_NUM) -> float:
    """Width in image pixels of one of the ``griding_num`` horizontal cells."""
    return (image_width - 1) / (griding_num - 1)


def anchor_rows_in_image(row_anchors: Sequence[float], image_height: int) -> np.ndarray:
    """The row anchors (given for a 288-row image) in the rows of an image ``image_height`` tall."""
    return np.asarray(row_anchors, dtype=np.float64) * image_height / ANCHOR_SPACE_HEIGHT


def row_anchor_targets(record: LaneRecord, image_width: int, image_height: int, row_anchors: Sequence[float] = TUSIMPLE_ROW_ANCHORS,
                       griding_num: int = GRIDING_NUM, num_lanes: int = NUM_LANES) -> np.ndarray:
    """Grid-cell class (0..griding_num-1, or griding_num for "no lane") per row anchor and lane slot: ``(anchors, lanes)``."""
    rows = anchor_rows_in_image(row_anchors, image_height)
    width = cell_width(image_width, griding_num)
    target = np.full((len(rows), num_lanes), griding_num, dtype=np.int64)
    for slot, lane in enumerate(order_lanes(record, image_width, image_height, num_lanes)):
        if lane is None:
            continue
        xs = lane_x_at(lane, record.h_samples, rows)
        inside = (xs >= 0) & (xs <= image_width - 1)
        target[inside, slot] = np.floor(xs[inside] / width).astype(np.int64).clip(0, griding_num - 1)
    return target


def segmentation_target(record: LaneRecord, image_width: int, image_height: int, out_size: tuple[int, int],
                        num_lanes: int = NUM_LANES, line_width_at_1280: float = 16.0) -> np.ndarray:
    """Lane-slot mask (0 background, 1..num_lanes) of size ``out_size = (h, w)`` for the auxiliary branch."""
    from PIL import Image, ImageDraw

    out_h, out_w = out_size
    sx, sy = out_w / image_width, out_h / image_height
    canvas = Image.new("L", (out_w, out_h), 0)
    draw = ImageDraw.Draw(canvas)
    width = max(1, int(round(line_width_at_1280 * image_width / 1280 * sx)))
    for slot, lane in enumerate(order_lanes(record, image_width, image_height, num_lanes)):
        if lane is None:
            continue
        points = [(x * sx, y * sy) for x, y in zip(lane, record.h_samples) if x >= 0]
        if len(points) >= 2:
            draw.line(points, fill=slot + 1, width=width)
    return np.asarray(canvas, dtype=np.int64)
