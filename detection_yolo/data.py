"""Detection data in Ultralytics' YOLO format: a generated shapes set (smoke), COCO128 sample
images (tests, CPU runs) and standard Ultralytics data YAMLs (paper)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from core.config import load_yaml
from core.errors import DataError

from .ultralytics_env import ultralytics_root

__all__ = ["SHAPE_NAMES", "generate_shapes_dataset", "coco128_data_yaml", "check_data_yaml", "read_labels"]

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

    Ultralytics writes label caches beside the label folders, so the YAML points at a view in
    ``work_dir`` whose image and label folders link to ``source``: nothing is written there.
    Train and val are the same 128 images, as in Ultralytics' own coco128.yaml.
    """
    source, work_dir = Path(source), Path(work_dir)
    for sub in ("images/train2017", "labels/train2017"):
        if not (source / sub).is_dir():
            raise DataError(f"{source / sub} does not exist; point SLR_DATA_ROOT (or --data-root) at a folder holding coco128/")
        link = work_dir / sub
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.symlink((source / sub).resolve(), link, target_is_directory=True)
    data = {"path": str(work_dir.resolve()), "train": "images/train2017", "val": "images/train2017", "names": _coco_names()}
    path = work_dir / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def check_data_yaml(path: str | Path) -> dict[str, Any]:
    """Read an Ultralytics data YAML and check that its train and val folders exist locally.

    Nothing is downloaded: a YAML whose data is missing is a :class:`DataError` naming the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data YAML {path} not found; pass --data-root holding it or --set data=PATH (an Ultralytics data YAML)")
    spec = load_yaml(path, what="Ultralytics data YAML") or {}
    if not isinstance(spec, dict):
        raise DataError(f"{path} is not an Ultralytics data YAML (a mapping with path, train, val and names); fix the file")
    base = Path(spec.get("path") or path.parent)
    if not base.is_absolute():
        base = (path.parent / base).resolve()
    for split in ("train", "val"):
        entries = spec.get(split)
        if not entries:
            raise DataError(f"{path} has no '{split}' entry; an Ultralytics data YAML lists train and val image folders or files")
        for entry in entries if isinstance(entries, list) else [entries]:
            target = Path(entry) if Path(entry).is_absolute() else base / entry
            if not target.exists():
                raise DataError(f"{path}: {split} data {target} does not exist; download COCO there first (this project never downloads it)")
    if "names" not in spec:
        raise DataError(f"{path} has no 'names'; list the class names in the data YAML")
    return spec
