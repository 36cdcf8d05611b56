"""Box conventions and transforms.

Lidar boxes are ``(x, y, z, dx, dy, dz, heading)`` with ``(x, y, z)`` the box centre in the
velodyne frame, ``dx, dy, dz`` length, width, height, and ``heading`` the yaw about +z measured
from +x. Camera boxes are KITTI labels: bottom centre ``(x, y, z)`` in the rectified camera frame,
``(h, w, l)`` and ``rotation_y`` about the camera's +y (downward) axis.
"""
from __future__ import annotations

import numpy as np

from .kitti_io import Calibration

__all__ = ["limit_period", "camera_to_lidar_boxes", "lidar_to_camera_boxes", "lidar_box_corners",
           "points_in_boxes", "fov_mask", "boxes_to_image_bboxes", "alpha_from_box"]


def limit_period(angle, offset: float = 0.5, period: float = 2 * np.pi):
    """``angle`` wrapped into ``[-offset * period, (1 - offset) * period)``."""
    return angle - np.floor(angle / period + offset) * period


def camera_to_lidar_boxes(location: np.ndarray, dims_hwl: np.ndarray, rotation_y: np.ndarray, calib: Calibration) -> np.ndarray:
    """KITTI camera boxes (bottom centre, h w l, ry) to (N, 7) lidar boxes."""
    location = np.asarray(location, dtype=np.float64).reshape(-1, 3)
    dims_hwl = np.asarray(dims_hwl, dtype=np.float64).reshape(-1, 3)
    h, w, l = dims_hwl[:, 0], dims_hwl[:, 1], dims_hwl[:, 2]
    centre = calib.rect_to_lidar(location)
    centre[:, 2] += h / 2
    heading = -(np.asarray(rotation_y, dtype=np.float64).reshape(-1) + np.pi / 2)
    return np.column_stack([centre, l, w, h, limit_period(heading)])


def lidar_to_camera_boxes(boxes: np.ndarray, calib: Calibration) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 7) lidar boxes to KITTI camera ``(location, dims_hwl, rotation_y)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    bottom = boxes[:, :3].copy()
    bottom[:, 2] -= boxes[:, 5] / 2
    location = calib.lidar_to_rect(bottom)
    dims = boxes[:, [5, 4, 3]]
    rotation_y = limit_period(-boxes[:, 6] - np.pi / 2)
    return location, dims, rotation_y


def lidar_box_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 8, 3) corners: four bottom corners counter-clockwise, then the four top ones."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    unit = np.array([[1, 1, -1], [-1, 1, -1], [-1, -1, -1], [1, -1, -1],
                     [1, 1, 1], [-1, 1, 1], [-1, -1, 1], [1, -1, 1]], dtype=np.float64) / 2
    local = unit[None] * boxes[:, None, 3:6]
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    x = local[..., 0] * c[:, None] - local[..., 1] * s[:, None]
    y = local[..., 0] * s[:, None] + local[..., 1] * c[:, None]
    return np.stack([x, y, local[..., 2]], axis=-1) + boxes[:, None, :3]


def points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N_boxes, N_points) boolean: which points lie inside which lidar box."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    rel = points[None, :, :3] - boxes[:, None, :3]
    c, s = np.cos(boxes[:, 6])[:, None], np.sin(boxes[:, 6])[:, None]
    lx = rel[..., 0] * c + rel[..., 1] * s
    ly = -rel[..., 0] * s + rel[..., 1] * c
    half = boxes[:, None, 3:6] / 2
    return (np.abs(lx) <= half[..., 0]) & (np.abs(ly) <= half[..., 1]) & (np.abs(rel[..., 2]) <= half[..., 2])


def fov_mask(points: np.ndarray, calib: Calibration, image_size: tuple[int, int]) -> np.ndarray:
    """Points that project inside camera 2's image (height, width) and lie in front of it."""
    uv, depth = calib.lidar_to_img(points[:, :3])
    height, width = image_size
    return (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height) & (depth >= 0)


def boxes_to_image_bboxes(boxes: np.ndarray, calib: Calibration, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """(N, 4) 2D boxes (left, top, right, bottom) enclosing the projected corners, clipped to the image."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    if len(boxes) == 0:
        return np.zeros((0, 4))
    corners = lidar_box_corners(boxes).reshape(-1, 3)
    uv, _ = calib.lidar_to_img(corners)
    uv = uv.reshape(-1, 8, 2)
    out = np.concatenate([uv.min(axis=1), uv.max(axis=1)], axis=1)
    if image_size is not None:
        height, width = image_size
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width - 1)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height - 1)
    return out


def alpha_from_box(location: np.ndarray, rotation_y: np.ndarray) -> np.ndarray:
    """Observation angle ``alpha = ry - atan2(x, z)`` (rather: ``-atan2(-y_l, x_l) + ry`` in lidar terms)."""
    location = np.asarray(location).reshape(-1, 3)
    return limit_period(np.asarray(rotation_y).reshape(-1) - np.arctan2(location[:, 0], location[:, 2]))
