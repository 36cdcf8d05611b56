"""Readers and writers for the KITTI 3D object layout.

``<root>/training/{velodyne/NNNNNN.bin, label_2/NNNNNN.txt, calib/NNNNNN.txt, image_2/NNNNNN.png}``
and ``<root>/ImageSets/{train,val,test}.txt`` (one frame id a line).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import DataError

__all__ = ["Object3d", "Calibration", "read_points", "write_points", "read_labels", "write_labels",
           "read_calib", "write_calib", "read_image_size", "read_split", "frame_ids", "labels_to_arrays"]


@dataclass
class Object3d:
    """One line of a ``label_2`` file (15 fields; a 16th, the score, for predictions)."""

    name: str
    truncated: float
    occluded: int
    alpha: float
    bbox: tuple[float, float, float, float]  # left, top, right, bottom (pixels)
    dims: tuple[float, float, float]  # height, width, length (m)
    location: tuple[float, float, float]  # x, y, z of the bottom centre, rectified camera frame (m)
    rotation_y: float
    score: float | None = None

    @classmethod
    def from_line(cls, line: str) -> "Object3d":
        f = line.split()
        if len(f) not in (15, 16):
            raise DataError(f"a KITTI label line has 15 fields (16 with a score), got {len(f)}: '{line.strip()}'")
        try:
            v = [float(x) for x in f[1:]]
        except ValueError:
            bad = next(x for x in f[1:] if not _is_number(x))
            raise DataError(f"a KITTI label line has a class name and 14 numbers, got '{bad}': '{line.strip()}'") from None
        return cls(f[0], v[0], int(v[1]), v[2], tuple(v[3:7]), tuple(v[7:10]), tuple(v[10:13]), v[13],
                   v[14] if len(v) > 14 else None)

    def to_line(self) -> str:
        nums = [self.truncated, self.occluded, self.alpha, *self.bbox, *self.dims, *self.location, self.rotation_y]
        text = f"{self.name} {nums[0]:.2f} {int(nums[1])} " + " ".join(f"{x:.2f}" for x in nums[2:])
        return text + (f" {self.score:.4f}" if self.score is not None else "")


@dataclass
class Calibration:
    """Camera-2 projection, rectification and velodyne-to-camera transform of one frame."""

    P2: np.ndarray  # (3, 4)
    R0_rect: np.ndarray  # (3, 3)
    Tr_velo_to_cam: np.ndarray  # (3, 4)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def velo_to_rect(self) -> np.ndarray:
        """4x4 matrix taking homogeneous lidar points to the rectified camera frame."""
        r0 = np.eye(4)
        r0[:3, :3] = self.R0_rect
        v2c = np.eye(4)
        v2c[:3, :4] = self.Tr_velo_to_cam
        return r0 @ v2c

    def lidar_to_rect(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64)
        return pts @ self.velo_to_rect[:3, :3].T + self.velo_to_rect[:3, 3]

    def rect_to_lidar(self, pts: np.ndarray) -> np.ndarray:
        inv = np.linalg.inv(self.velo_to_rect)
        pts = np.asarray(pts, dtype=np.float64)
        return pts @ inv[:3, :3].T + inv[:3, 3]

    def rect_to_img(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) and depth (N,) of rectified camera points."""
        pts = np.asarray(pts, dtype=np.float64)
        proj = pts @ self.P2[:, :3].T + self.P2[:, 3]
        depth = proj[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = proj[:, :2] / depth[:, None]
        return uv, depth - self.P2[2, 3]

    def lidar_to_img(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.rect_to_img(self.lidar_to_rect(pts))


def read_points(path: str | Path) -> np.ndarray:
    """Velodyne scan as (N, 4) float32: x, y, z, reflectance."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"point cloud not found: {path}; check the KITTI data root")
    size = path.stat().st_size
    if size % 16:
        raise DataError(f"{path} has {size} bytes, not a multiple of 4 float32 values (16 bytes) a point: the file is truncated; "
                        "copy it again from the KITTI velodyne archive")
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_points(path: str | Path, points: np.ndarray) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(points, dtype=np.float32).tofile(path)


def read_labels(path: str | Path) -> list[Object3d]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label file not found: {path}; check the KITTI data root")
    objects = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                objects.append(Object3d.from_line(line))
            except DataError as err:
                raise DataError(f"{path}:{number}: {err}; fix or remove that line") from None
    return objects


def write_labels(path: str | Path, objects: list[Object3d]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(o.to_line() + "\n" for o in objects))


def read_calib(path: str | Path) -> Calibration:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"calibration file not found: {path}; check the KITTI data root")
    mats: dict[str, np.ndarray] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if ":" not in line:
            continue
        key, values = line.split(":", 1)
        try:
            mats[key.strip()] = np.array([float(x) for x in values.split()], dtype=np.float64)
        except ValueError:
            raise DataError(f"{path}:{number}: '{key.strip()}' holds a value that is not a number; "
                            "copy the calib file again from the KITTI archive") from None
    sizes = {"P2": 12, "R0_rect": 9, "Tr_velo_to_cam": 12}
    for key, count in sizes.items():
        if key not in mats or mats[key].size != count:
            problem = f"has no {key} line" if key not in mats else f"has {mats[key].size} values for {key}, not {count}"
            raise DataError(f"{path} {problem}; a KITTI calib file needs P2 (12 values), R0_rect (9) and Tr_velo_to_cam (12): "
                            "copy it again from the KITTI archive")
    return Calibration(mats["P2"].reshape(3, 4), mats["R0_rect"].reshape(3, 3), mats["Tr_velo_to_cam"].reshape(3, 4),
                       {k: v for k, v in mats.items() if k not in sizes})


def write_calib(path: str | Path, calib: Calibration) -> None:
    lines = {f"P{i}": calib.extra.get(f"P{i}", calib.P2.reshape(-1)) for i in range(4)}
    lines["P2"] = calib.P2.reshape(-1)
    lines["R0_rect"] = calib.R0_rect.reshape(-1)
    lines["Tr_velo_to_cam"] = calib.Tr_velo_to_cam.reshape(-1)
    lines["Tr_imu_to_velo"] = calib.extra.get("Tr_imu_to_velo", np.eye(4)[:3].reshape(-1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(f"{k}: " + " ".join(f"{x:.12e}" for x in v) + "\n" for k, v in lines.items()))


def read_image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of a PNG, read from its header (no decoding)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path}; check the KITTI data root")
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataError(f"{path} is not a PNG file; copy it again from the KITTI image_2 archive")
    width, height = struct.unpack(">II", head[16:24])
    return int(height), int(width)


def read_split(root: str | Path, split: str) -> list[str]:
    """Frame ids of ``ImageSets/<split>.txt``."""
    path = Path(root) / "ImageSets" / f"{split}.txt"
    if not path.is_file():
        raise DataError(f"split file not found: {path}; add ImageSets/{split}.txt (one frame id a line)")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def frame_ids(root: str | Path, split: str | None = None) -> list[str]:
    """Ids from the split file when given, else every ``training/velodyne/*.bin``."""
    if split is not None:
        return read_split(root, split)
    velo = Path(root) / "training" / "velodyne"
    ids = sorted(p.stem for p in velo.glob("*.bin"))
    if not ids:
        raise DataError(f"no point clouds under {velo}; point --data-root at a KITTI object folder")
    return ids


def labels_to_arrays(objects: list[Object3d]) -> dict[str, np.ndarray]:
    """Column arrays of a frame's labels (the form the evaluation reads)."""
    n = len(objects)
    return {
        "name": np.array([o.name for o in objects], dtype=object),
        "truncated": np.array([o.truncated for o in objects], dtype=np.float64).reshape(n),
        "occluded": np.array([o.occluded for o in objects], dtype=np.int64).reshape(n),
        "alpha": np.array([o.alpha for o in objects], dtype=np.float64).reshape(n),
        "bbox": np.array([o.bbox for o in objects], dtype=np.float64).reshape(n, 4),
        "dimensions": np.array([o.dims for o in objects], dtype=np.float64).reshape(n, 3),  # h, w, l
        "location": np.array([o.location for o in objects], dtype=np.float64).reshape(n, 3),
        "rotation_y": np.array([o.rotation_y for o in objects], dtype=np.float64).reshape(n),
        "score": np.array([o.score if o.score is not None else 0.0 for o in objects], dtype=np.float64).reshape(n),
    }
