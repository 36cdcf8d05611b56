"""KITTI frames as training and evaluation samples for PointPillars."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .augment import GTDatabase, random_flip_x, random_rotation, random_scaling
from .boxes import (alpha_from_box, boxes_to_image_bboxes, camera_to_lidar_boxes, fov_mask, lidar_to_camera_boxes)
from .kitti_io import Calibration, labels_to_arrays, read_calib, read_image_size, read_labels, read_points

__all__ = ["KittiFrames", "collate", "predictions_to_annos"]


class KittiFrames(torch.utils.data.Dataset):
    """Frames ``ids`` of ``<root>/training``: points (camera field of view only), lidar gt boxes and labels."""

    def __init__(self, root: str | Path, ids: Sequence[str], classes: Sequence[str], point_cloud_range: Sequence[float],
                 training: bool = False, augmentation: Mapping[str, Any] | None = None, fov_points_only: bool = True, seed: int = 0) -> None:
        self.root = Path(root) / "training"
        self.ids = list(ids)
        self.classes = list(classes)
        self.range = np.asarray(point_cloud_range, dtype=np.float64)
        self.training = training
        self.aug = dict(augmentation or {})
        self.fov_points_only = fov_points_only
        self.rng = np.random.default_rng(seed)
        self._cache: dict[int, dict[str, Any]] = {}
        self.database = None
        gts = self.aug.get("gt_sampling", {})
        if training and gts.get("enabled", False):
            self.database = GTDatabase.build([self.frame(i) for i in range(len(self.ids))], self.classes, gts.get("min_points", {}))

    def __len__(self) -> int:
        return len(self.ids)

    def frame(self, index: int) -> dict[str, Any]:
        """The raw frame: points, calibration, image size, label arrays, lidar boxes of the evaluated classes."""
        if index in self._cache:
            return self._cache[index]
        fid = self.ids[index]
        calib = read_calib(self.root / "calib" / f"{fid}.txt")
        image_size = read_image_size(self.root / "image_2" / f"{fid}.png")
        points = read_points(self.root / "velodyne" / f"{fid}.bin")
        if self.fov_points_only:
            points = points[fov_mask(points, calib, image_size)]
        annos = labels_to_arrays(read_labels(self.root / "label_2" / f"{fid}.txt"))
        keep = np.array([n in self.classes for n in annos["name"]], dtype=bool)
        boxes = camera_to_lidar_boxes(annos["location"][keep], annos["dimensions"][keep], annos["rotation_y"][keep], calib)
        frame = {"id": fid, "points": points, "calib": calib, "image_size": image_size, "annos": annos,
                 "gt_boxes": boxes, "gt_names": annos["name"][keep]}
        self._cache[index] = frame
        return frame

    def __getitem__(self, index: int) -> dict[str, Any]:
        frame = self.frame(index)
        points, boxes, names = frame["points"], frame["gt_boxes"], frame["gt_names"]
        if self.training:
            if self.database is not None:
                points, boxes, names = self.database.sample(points, boxes, names, self.aug["gt_sampling"].get("sample_groups", {}), self.rng)
            if self.aug.get("flip_x", False):
                points, boxes = random_flip_x(points, boxes, self.rng)
            if self.aug.get("rotation"):
                points, boxes = random_rotation(points, boxes, self.aug["rotation"], self.rng)
            if self.aug.get("scaling"):
                points, boxes = random_scaling(points, boxes, self.aug["scaling"], self.rng)
            inside = ((boxes[:, :3] >= self.range[:3]) & (boxes[:, :3] <= self.range[3:])).all(1) if len(boxes) else np.zeros(0, bool)
            boxes, names = boxes[inside], names[inside]
            points = points[self.rng.permutation(len(points))]
        labels = np.array([self.classes.index(n) + 1 for n in names], dtype=np.float64)
        return {"index": index, "points": torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)),
                "gt_boxes": torch.from_numpy(np.column_stack([boxes.reshape(-1, 7), labels]).astype(np.float32))}


def collate(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Point clouds as a list; gt boxes zero-padded to (B, M, 8)."""
    m = max([len(s["gt_boxes"]) for s in samples] + [1])
    gt = torch.zeros(len(samples), m, 8)
    for b, s in enumerate(samples):
        gt[b, :len(s["gt_boxes"])] = s["gt_boxes"]
    return {"index": [s["index"] for s in samples], "points": [s["points"] for s in samples], "gt_boxes": gt}


def predictions_to_annos(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                         calib: Calibration, image_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """KITTI annotation arrays of predicted lidar boxes (1-based ``labels``), 2D boxes from the projection."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    loc, dims, ry = lidar_to_camera_boxes(boxes, calib)
    n = len(boxes)
    return {
        "name": np.array([classes[int(k) - 1] for k in labels], dtype=object).reshape(n),
        "truncated": np.zeros(n), "occluded": np.zeros(n, dtype=np.int64),
        "alpha": alpha_from_box(loc, ry).reshape(n),
        "bbox": boxes_to_image_bboxes(boxes, calib, image_size).reshape(n, 4),
        "dimensions": dims.reshape(n, 3), "location": loc.reshape(n, 3), "rotation_y": ry.reshape(n),
        "score": np.asarray(scores, dtype=np.float64).reshape(n),
    }
