"""Detection data in Ultralytics' YOLO format: a generated shapes set (smoke), COCO128 sample
images (tests, CPU runs); standard Ultralytics data YAMLs are checked in :mod:`.data_check`."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import yaml

from core.errors import DataError

from .ultralytics_env import ultralytics_root

__all__ = ["SHAPE_NAMES", "generate_shapes_dataset", "coco128_data_yaml", "read_labels"]

SHAPE_NAMES = ("square", "disc", "triangle")


def _draw_shape(canvas: np.ndarray, kind: int, cx: float, cy: float, size: float, colour: np.ndarray) -> tuple[float, float, float, float]:
    """Draw one filled shape on ``canvas`` (H, W, 3); return its box (x0, y0, x1, y1) in pixels."""
    h, w = canvas.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    half = size / 2
    if kind == 0:
        inside = (np.abs(xx - cx) <= half) & (np.abs(yy - cy) <= half)
    elif kind == 1:
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= half**2
    else:  # upward triangle: apex at the top, base at the bottom
        rel = (yy - (cy - half)) / size  # 0 at the apex, 1 at the base
        inside = (rel >= 0) & (rel <= 1) & (np.abs(xx - cx) <= rel * half)
    canvas[inside] = colour
    ys, xs = np.nonzero(inside)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def generate_shapes_dataset(root: str | Path, n_train: int = 48, n_val: int = 16, imgsz: int = 128, seed: int = 0,
                            max_objects: int = 3) -> Path:
    """Write a small detection set of coloured shapes on noisy backgrounds in YOLO format.

    Layout: ``images/{train,val}/*.png``, ``labels/{train,val}/*.txt`` (``cls cx cy w h``,
    normalised to [0, 1]) and ``data.yaml``; returns the YAML path. The same arguments always
    give the same files.
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            background = rng.integers(0, 120, size=3)
            canvas = np.clip(background + rng.normal(0, 12, size=(imgsz, imgsz, 3)), 0, 255).astype(np.uint8)
            lines = []
            for _ in range(int(rng.integers(1, max_objects + 1))):
                kind = int(rng.integers(0, len(SHAPE_NAMES)))
                size = float(rng.uniform(0.2, 0.45) * imgsz)
                cx, cy = rng.uniform(size / 2, imgsz - size / 2, size=2)
                colour = rng.integers(140, 256, size=3).astype(np.uint8)
                x0, y0, x1, y1 = _draw_shape(canvas, kind, cx, cy, size, colour)
                lines.append(f"{kind} {(x0 + x1) / 2 / imgsz:.6f} {(y0 + y1) / 2 / imgsz:.6f} "
                             f"{(x1 - x0) / imgsz:.6f} {(y1 - y0) / imgsz:.6f}")
            name = f"{split}_{index:04d}"
            Image.fromarray(canvas).save(root / "images" / split / f"{name}.png")
            (root / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + "\n")
    data = {"path": str(root.resolve()), "train": "images/train", "val": "images/val",
            "names": dict(enumerate(SHAPE_NAMES))}
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_labels(path: str | Path) -> np.ndarray:
    """A YOLO label file as an (N, 5) array ``cls cx cy w h``."""
    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def _coco_names() -> dict[int, str]:
    """The 80 COCO class names from Ultralytics' own ``coco.yaml``."""
    spec = yaml.safe_load((ultralytics_root() / "cfg" / "datasets" / "coco.yaml").read_text())
    return dict(spec["names"])


def coco128_data_yaml(source: str | Path, work_dir: str | Path) -> Path:
    """A data YAML for the COCO128 sample at ``source`` (``images/train2017``, ``labels/train2017``).

    Ultralytics writes its label cache beside the label folder, so the YAML points at a view in
    ``work_dir``: each image is linked to its file in ``source``, the small label files are
    copied, and the cache lands in ``work_dir``; nothing is written under ``source``. Train and val are the
    same 128 images, as in Ultralytics' own coco128.yaml.
    """
    source, work_dir = Path(source), Path(work_dir)
    for sub in ("images/train2017", "labels/train2017"):
        if not (source / sub).is_dir():
            raise DataError(f"{source / sub} does not exist; point SLR_DATA_ROOT (or --data-root) at a folder holding coco128/")
    for sub in ("images/train2017", "labels/train2017"):
        if (work_dir / sub).is_symlink():  # a view of an earlier version linked whole folders
            (work_dir / sub).unlink()
        (work_dir / sub).mkdir(parents=True, exist_ok=True)
    # Ultralytics resolves the split folder (a linked folder would lead it back to the source),
    # not the files in it: one link per image
    for image in (source / "images" / "train2017").iterdir():
        link = work_dir / "images" / "train2017" / image.name
        if not link.is_symlink():
            os.symlink(image.resolve(), link)
    for label in (source / "labels" / "train2017").glob("*.txt"):
        if not (work_dir / "labels" / "train2017" / label.name).is_file():
            shutil.copyfile(label, work_dir / "labels" / "train2017" / label.name)
    data = {"path": str(work_dir.resolve()), "train": "images/train2017", "val": "images/train2017", "names": _coco_names()}
    path = work_dir / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
