"""Training augmentations: ground-truth database sampling, random flip, rotation and scaling."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .boxes import limit_period, points_in_boxes
from .rotated_iou import rotated_iou

__all__ = ["GTDatabase", "random_flip_x", "random_rotation", "random_scaling"]


@dataclass
class GTDatabase:
    """Objects cut out of the training frames: their lidar boxes, classes and the points inside."""

    boxes: np.ndarray  # (K, 7)
    names: np.ndarray  # (K,)
    points: list[np.ndarray]  # K arrays (n_k, 4), in the frame's coordinates

    @classmethod
    def build(cls, frames: Sequence[Mapping], classes: Sequence[str], min_points: Mapping[str, int]) -> "GTDatabase":
        """From frames holding ``points``, ``gt_boxes`` (K, 7) and ``gt_names``; objects with too few points are left out."""
        boxes, names, pts = [], [], []
        for frame in frames:
            if len(frame["gt_boxes"]) == 0:
                continue
            inside = points_in_boxes(frame["points"], frame["gt_boxes"])
            for k, name in enumerate(frame["gt_names"]):
                if name in classes and inside[k].sum() >= min_points.get(name, 0):
                    boxes.append(frame["gt_boxes"][k])
                    names.append(name)
                    pts.append(frame["points"][inside[k]])
        return cls(np.array(boxes).reshape(-1, 7), np.array(names, dtype=object), pts)

    def sample(self, points: np.ndarray, gt_boxes: np.ndarray, gt_names: np.ndarray, groups: Mapping[str, int],
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Add database objects until each class has ``groups[class]`` objects, skipping any that would overlap in BEV.

        Scene points inside the added boxes are removed before the objects' points are added.
        """
        added = []
        current = gt_boxes.copy()
        for name, want in groups.items():
            pool = np.nonzero(self.names == name)[0]
            need = int(want) - int((gt_names == name).sum())
            if need <= 0 or len(pool) == 0:
                continue
            for k in rng.choice(pool, size=min(need, len(pool)), replace=False):
                box = self.boxes[k]
                if len(current) and rotated_iou(box[None, [0, 1, 3, 4, 6]], current[:, [0, 1, 3, 4, 6]]).max() > 0:
                    continue
                added.append(k)
                current = np.vstack([current, box[None]])
        if not added:
            return points, gt_boxes, gt_names
        new_boxes = self.boxes[added]
        keep = ~points_in_boxes(points, new_boxes).any(0)
        points = np.concatenate([points[keep]] + [self.points[k] for k in added]).astype(np.float32)
        return points, np.vstack([gt_boxes.reshape(-1, 7), new_boxes]), np.concatenate([gt_names, self.names[added]])


def random_flip_x(points: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mirror across the x axis (y -> -y, heading -> -heading) with probability 1/2."""
    if rng.random() < 0.5:
        points, boxes = points.copy(), boxes.copy()
        points[:, 1] *= -1
        boxes[:, 1] *= -1
        boxes[:, 6] *= -1
    return points, boxes


def random_rotation(points: np.ndarray, boxes: np.ndarray, limits: Sequence[float], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rotate the scene about the lidar's z axis by a uniform angle in ``limits``."""
    angle = rng.uniform(limits[0], limits[1])
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    points, boxes = points.copy(), boxes.copy()
    points[:, :2] = points[:, :2] @ rot.T
    boxes[:, :2] = boxes[:, :2] @ rot.T
    boxes[:, 6] = limit_period(boxes[:, 6] + angle)
    return points, boxes


def random_scaling(points: np.ndarray, boxes: np.ndarray, limits: Sequence[float], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scale coordinates and box sizes by a uniform factor in ``limits``."""
    factor = rng.uniform(limits[0], limits[1])
    points, boxes = points.copy(), boxes.copy()
    points[:, :3] *= factor
    boxes[:, :6] *= factor
    return points, boxes
