"""Synthetic scenes in the exact KITTI object layout, for the smoke profile (nothing is downloaded).

Each scene is a flat ground plane seen by a lidar 1.73 m above it, a few walls and poles as
clutter, and Cars, Pedestrians and Cyclists as boxes whose visible faces carry points (fewer
with distance and occlusion). Labels, calibration, a blank PNG of KITTI's image size and the
ImageSets split files are written beside the point clouds.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from .boxes import alpha_from_box, boxes_to_image_bboxes, lidar_to_camera_boxes, points_in_boxes
from .kitti_io import Calibration, Object3d, write_calib, write_labels, write_points
from .rotated_iou import rotated_iou

__all__ = ["KITTI_LIKE_CALIB", "IMAGE_SIZE", "OBJECT_SIZES", "write_png", "make_scene", "generate_kitti_scenes"]

IMAGE_SIZE = (375, 1242)  # height, width
LIDAR_HEIGHT = 1.73
OBJECT_SIZES = {"Car": (3.9, 1.6, 1.56), "Pedestrian": (0.8, 0.6, 1.73), "Cyclist": (1.76, 0.6, 1.73)}  # l, w, h
CLASS_WEIGHTS = {"Car": 0.5, "Pedestrian": 0.25, "Cyclist": 0.25}


def kitti_like_calib() -> Calibration:
    """A calibration with KITTI's camera-2 intrinsics and the usual axis swap from velodyne to camera."""
    p2 = np.array([[721.5377, 0.0, 609.5593, 44.85728], [0.0, 721.5377, 172.854, 0.2163791], [0.0, 0.0, 1.0, 0.002745884]])
    tr = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27]])
    p0 = p2.copy()
    p0[:, 3] = 0
    return Calibration(p2, np.eye(3), tr, {"P0": p0.reshape(-1), "P1": p0.reshape(-1), "P3": p2.reshape(-1)})


KITTI_LIKE_CALIB = kitti_like_calib()


def write_png(path: str | Path, height: int, width: int, value: int = 0) -> None:
    """A grey 8-bit PNG of the given size."""
    raw = b"".join(b"\x00" + bytes([value]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(png)


def _surface_points(box: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points on the faces of a lidar box that face the sensor at the origin, and on its top."""
    x, y, z, l, w, h, yaw = box
    c, s = np.cos(yaw), np.sin(yaw)
    to_sensor = -np.array([x, y])
    local_dir = np.array([c * to_sensor[0] + s * to_sensor[1], -s * to_sensor[0] + c * to_sensor[1]])
    faces = []  # (axis, sign) of visible side faces
    faces.append((0, np.sign(local_dir[0]) or 1.0))
    faces.append((1, np.sign(local_dir[1]) or 1.0))
    pick = rng.integers(0, 3, n)  # 0, 1: side faces, 2: top
    u = rng.uniform(-0.5, 0.5, (n, 3))
    local = u * np.array([l, w, h])
    for k, (axis, sign) in enumerate(faces):
        sel = pick == k
        local[sel, axis] = sign * [l, w][axis] / 2
    local[pick == 2, 2] = h / 2
    local += rng.normal(0, 0.02, local.shape)
    gx = local[:, 0] * c - local[:, 1] * s + x
    gy = local[:, 0] * s + local[:, 1] * c + y
    return np.column_stack([gx, gy, local[:, 2] + z, rng.uniform(0.1, 0.9, n)])


def make_scene(rng: np.random.Generator, max_range: float = 30.0, num_objects: tuple[int, int] = (3, 7),
               classes: Sequence[str] = ("Car", "Pedestrian", "Cyclist")) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Points (N, 4), lidar boxes (K, 7), class names and occlusion levels of one random scene."""
    calib = KITTI_LIKE_CALIB
    ground_z = -LIDAR_HEIGHT
    n_ground = 6000
    r = np.sqrt(rng.uniform(4.0, max_range ** 2, n_ground))
    ang = rng.uniform(-0.7, 0.7, n_ground)
    ground = np.column_stack([r * np.cos(ang), r * np.sin(ang), ground_z + rng.normal(0, 0.03, n_ground), rng.uniform(0, 0.3, n_ground)])
    parts = [ground]
    for _ in range(rng.integers(1, 4)):  # clutter: walls and poles
        cx, cy = rng.uniform(5, max_range), rng.uniform(-0.6, 0.6) * max_range / 2
        if rng.random() < 0.5:
            n = 300
            parts.append(np.column_stack([np.full(n, cx) + rng.normal(0, 0.05, n), cy + rng.uniform(-4, 4, n), rng.uniform(ground_z, ground_z + 2.5, n), rng.uniform(0, 1, n)]))
        else:
            n = 60
            parts.append(np.column_stack([cx + rng.normal(0, 0.08, n), cy + rng.normal(0, 0.08, n), rng.uniform(ground_z, ground_z + 3.5, n), rng.uniform(0, 1, n)]))
    boxes, names, occlusion = [], [], []
    names_all = list(classes)
    weights = np.array([CLASS_WEIGHTS.get(c, 1.0) for c in names_all])
    target = rng.integers(num_objects[0], num_objects[1] + 1)
    tries = 0
    while len(boxes) < target and tries < 100:
        tries += 1
        name = names_all[rng.choice(len(names_all), p=weights / weights.sum())]
        l, w, h = np.array(OBJECT_SIZES[name]) * rng.uniform(0.9, 1.1, 3)
        dist = rng.uniform(5.0, max_range - 3)
        bearing = rng.uniform(-0.55, 0.55)
        x, y = dist * np.cos(bearing), dist * np.sin(bearing)
        box = np.array([x, y, ground_z + h / 2, l, w, h, rng.uniform(-np.pi, np.pi)])
        if boxes and rotated_iou(box[None, [0, 1, 3, 4, 6]] * [1, 1, 1.3, 1.3, 1], np.array(boxes)[:, [0, 1, 3, 4, 6]]).max() > 0:
            continue
        if boxes_to_image_bboxes(box[None], calib, IMAGE_SIZE)[0, 2] - boxes_to_image_bboxes(box[None], calib, IMAGE_SIZE)[0, 0] < 5:
            continue
        occ = int(rng.choice([0, 1, 2], p=[0.6, 0.25, 0.15]))
        density = {"Car": 3000.0, "Pedestrian": 800.0, "Cyclist": 1000.0}[name]
        n = max(8, int(density / dist * (1.0 - 0.3 * occ)))
        boxes.append(box)
        names.append(name)
        occlusion.append(occ)
        parts.append(_surface_points(box, n, rng))
    boxes_arr = np.array(boxes).reshape(-1, 7)
    points = np.concatenate(parts).astype(np.float32)
    if len(boxes_arr):  # ground points under objects are hidden by them
        inside = points_in_boxes(points, boxes_arr).any(0) & (points[:, 2] < ground_z + 0.1)
        points = points[~inside]
    return points, boxes_arr, names, np.array(occlusion, dtype=np.int64)


def scene_labels(boxes: np.ndarray, names: Sequence[str], occlusion: np.ndarray, calib: Calibration = KITTI_LIKE_CALIB) -> list[Object3d]:
    """KITTI label objects (with 2D boxes and truncation from the image projection) of lidar boxes."""
    if len(boxes) == 0:
        return []
    loc, dims, ry = lidar_to_camera_boxes(boxes, calib)
    raw = boxes_to_image_bboxes(boxes, calib, None)
    clipped = boxes_to_image_bboxes(boxes, calib, IMAGE_SIZE)
    area_raw = np.prod(raw[:, 2:] - raw[:, :2], axis=1)
    area_clip = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1)
    trunc = np.clip(1 - area_clip / np.maximum(area_raw, 1e-6), 0, 1)
    alpha = alpha_from_box(loc, ry)
    return [Object3d(n, float(t), int(o), float(a), tuple(map(float, b)), tuple(map(float, d)), tuple(map(float, p)), float(r))
            for n, t, o, a, b, d, p, r in zip(names, trunc, occlusion, alpha, clipped, dims, loc, ry)]


def generate_kitti_scenes(root: str | Path, num_train: int, num_val: int, seed: int = 0, max_range: float = 30.0) -> Path:
    """Write ``num_train + num_val`` scenes under ``root`` in the KITTI layout; return ``root``.

    Frames ``000000..`` go to ``ImageSets/train.txt`` then ``val.txt``; an existing complete
    set written with the same arguments is reused.
    """
    root = Path(root)
    stamp = root / ".synthetic_kitti"
    signature = f"{num_train} {num_val} {seed} {max_range}"
    if stamp.is_file() and stamp.read_text() == signature:
        return root
    rng = np.random.default_rng(seed)
    calib = KITTI_LIKE_CALIB
    ids = [f"{i:06d}" for i in range(num_train + num_val)]
    for fid in ids:
        points, boxes, names, occ = make_scene(rng, max_range=max_range)
        write_points(root / "training" / "velodyne" / f"{fid}.bin", points)
        write_labels(root / "training" / "label_2" / f"{fid}.txt", scene_labels(boxes, names, occ, calib))
        write_calib(root / "training" / "calib" / f"{fid}.txt", calib)
        write_png(root / "training" / "image_2" / f"{fid}.png", *IMAGE_SIZE)
    (root / "ImageSets").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "train.txt").write_text("".join(f + "\n" for f in ids[:num_train]))
    (root / "ImageSets" / "val.txt").write_text("".join(f + "\n" for f in ids[num_train:]))
    stamp.write_text(signature)
    return root
