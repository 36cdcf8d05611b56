"""UFLD's joint image-and-label augmentation for TuSimple training: a random rotation of up to
6 degrees about the image centre, then a random shift of up to 100 rows and 200 columns (sizes
given for a 1280x720 frame and scaled to the frame at hand). Lanes move with the pixels and are
resampled at the record's ``h_samples``."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .labels import LaneRecord

__all__ = ["UFLDAugment", "affine_matrix", "transform_record"]


def affine_matrix(angle_deg: float, dx: float, dy: float, width: int, height: int) -> np.ndarray:
    """2x3 matrix mapping source pixel (x, y, 1) to its place after rotating by ``angle_deg`` about the centre and shifting."""
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    rot = np.array([[c, -s], [s, c]])
    shift = np.array([cx, cy]) - rot @ np.array([cx, cy]) + np.array([dx, dy])
    return np.hstack([rot, shift[:, None]])


def transform_record(record: LaneRecord, matrix: np.ndarray, width: int, height: int) -> LaneRecord:
    """The record's lanes moved by ``matrix`` and resampled at its ``h_samples`` (-2 outside the lane or the frame)."""
    hs = np.asarray(record.h_samples, dtype=np.float64)
    lanes = []
    for lane in record.lanes:
        xs = np.asarray(lane, dtype=np.float64)
        valid = xs >= 0
        out = np.full(len(hs), -2.0)
        if valid.sum() >= 2:
            points = matrix[:, :2] @ np.stack([xs[valid], hs[valid]]) + matrix[:, 2:]
            order = np.argsort(points[1])
            px, py = points[0][order], points[1][order]
            inside = (hs >= py[0]) & (hs <= py[-1])
            new_x = np.interp(hs[inside], py, px)
            new_x[(new_x < 0) | (new_x > width - 1)] = -2.0
            out[inside] = new_x
        lanes.append(out.tolist())
    return LaneRecord(record.raw_file, lanes, list(record.h_samples))


@dataclass
class UFLDAugment:
    """Random rotation and shift of a frame and its lanes (UFLD's TuSimple training augmentation)."""

    max_rotation_deg: float = 6.0
    max_shift_rows_720: float = 100.0
    max_shift_cols_1280: float = 200.0

    def __call__(self, image, record: LaneRecord, rng: np.random.Generator):
        width, height = image.size
        angle = rng.uniform(-self.max_rotation_deg, self.max_rotation_deg)
        dx = rng.uniform(-1, 1) * self.max_shift_cols_1280 * width / 1280
        dy = rng.uniform(-1, 1) * self.max_shift_rows_720 * height / 720
        return self.apply(image, record, angle, dx, dy)

    @staticmethod
    def apply(image, record: LaneRecord, angle_deg: float, dx: float, dy: float):
        """``image`` and ``record`` rotated by ``angle_deg`` and shifted by ``(dx, dy)`` pixels."""
        from PIL import Image

        width, height = image.size
        matrix = affine_matrix(angle_deg, dx, dy, width, height)
        inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]  # PIL maps output pixels to input pixels
        moved = image.transform((width, height), Image.AFFINE, tuple(inverse.ravel()), resample=Image.BILINEAR, fillcolor=(0, 0, 0))
        return moved, transform_record(record, matrix, width, height)
