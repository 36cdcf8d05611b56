"""Synthetic road frames in TuSimple's on-disk format, for the smoke profile.

    <root>/clips/<split>/<id>/20.jpg      the frames
    <root>/<split>_label.json             one TuSimple record per line (lanes, h_samples, raw_file)

Each frame is a road in perspective: sky, a grey road with texture, and 2 to 5 painted lanes
(solid or dashed, white or yellow) converging to a vanishing point, with a shared curvature.
``h_samples`` follow TuSimple's rows scaled to the frame height (160..710 step 10 at 720 rows).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from core.harness.results import atomic_write

__all__ = ["tusimple_h_samples", "make_frame", "generate_split", "ensure_synthetic_tusimple"]


def tusimple_h_samples(height: int) -> list[int]:
    """TuSimple's 56 label rows (160, 170, ..., 710 for 720 rows) scaled to ``height``."""
    return [int(round(k * height / 72)) for k in range(16, 72)]


def _lane_x(base_x: float, vx: float, horizon: float, height: int, curve: float, width: int, y: np.ndarray) -> np.ndarray:
    t = (y - horizon) / (height - horizon)
    return vx + (base_x - vx) * t + curve * width * t * (1 - t)


def make_frame(rng: np.random.Generator, width: int, height: int) -> tuple[Any, list[list[int]], list[int]]:
    """One synthetic frame (a PIL image), its lanes and its ``h_samples``."""
    from PIL import Image, ImageDraw, ImageFilter

    h_samples = tusimple_h_samples(height)
    horizon = height * rng.uniform(0.25, 0.33)
    vx = width * rng.uniform(0.4, 0.6)
    curve = rng.uniform(-0.25, 0.25)
    spacing = width * rng.uniform(0.3, 0.45)
    ego = width * rng.uniform(0.4, 0.6)
    count = int(rng.choice([2, 3, 4, 4, 4, 5]))
    left = int(rng.integers(max(1, count - 3), min(count, 3) + 1))
    bases = [ego - spacing * (left - 0.5 - i) for i in range(count)]

    sky = np.linspace([90, 140, 210], [200, 215, 235], int(horizon) + 1)
    pixels = np.empty((height, width, 3), dtype=np.float32)
    pixels[:] = rng.uniform(70, 110)
    pixels[: len(sky)] = sky[:, None, :]
    ground = rng.normal(0.0, 8.0, size=(height - len(sky), width, 1))
    pixels[len(sky):] += ground
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    # road shoulders: darker green/brown outside the outermost lanes
    ys = np.arange(int(horizon) + 1, height, dtype=np.float64)
    outer_l = _lane_x(bases[0] - 0.6 * spacing, vx, horizon, height, curve, width, ys)
    outer_r = _lane_x(bases[-1] + 0.6 * spacing, vx, horizon, height, curve, width, ys)
    shoulder = tuple(int(v) for v in rng.uniform(60, 120, size=3))
    draw.polygon([(0, ys[0])] + list(zip(outer_l, ys)) + [(0, height)], fill=shoulder)
    draw.polygon([(width, ys[0])] + list(zip(outer_r, ys)) + [(width, height)], fill=shoulder)

    lanes = []
    start = horizon + 0.06 * height
    for base in bases:
        colour = (240, 240, 235) if rng.random() < 0.75 else (230, 200, 60)
        dashed = rng.random() < 0.5
        phase = rng.uniform(0, 1)
        fine = np.linspace(start, height - 1, 160)
        xs = _lane_x(base, vx, horizon, height, curve, width, fine)
        for i in range(len(fine) - 1):
            t = (fine[i] - horizon) / (height - horizon)
            if dashed and ((np.log(t) * 4 + phase) % 1.0) > 0.6:
                continue
            line_w = max(1, int(round(0.02 * width * t)))
            draw.line([(xs[i], fine[i]), (xs[i + 1], fine[i + 1])], fill=colour, width=line_w)
        label_x = _lane_x(base, vx, horizon, height, curve, width, np.asarray(h_samples, dtype=np.float64))
        lane = [int(round(x)) if (h >= start and 0 <= x <= width - 1) else -2 for x, h in zip(label_x, h_samples)]
        if sum(x >= 0 for x in lane) >= 2:
            lanes.append(lane)
    image = image.filter(ImageFilter.GaussianBlur(radius=0.6))
    return image, lanes, h_samples


def generate_split(root: str | Path, split: str, count: int, width: int, height: int, seed: int) -> Path:
    """Write ``count`` frames of ``split`` under ``root``; return the label file."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    lines = []
    for index in range(count):
        image, lanes, h_samples = make_frame(rng, width, height)
        raw_file = f"clips/{split}/{index:05d}/20.jpg"
        path = root / raw_file
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=92)
        lines.append(json.dumps({"lanes": lanes, "h_samples": h_samples, "raw_file": raw_file}))
    label_file = root / f"{split}_label.json"
    atomic_write(label_file, lambda f: f.write("\n".join(lines) + "\n"))
    return label_file


def ensure_synthetic_tusimple(root: str | Path, train: int, test: int, image_size: tuple[int, int] = (640, 360), seed: int = 0) -> Path:
    """Generate the synthetic set under ``root`` unless one with the same settings is already there."""
    root = Path(root)
    settings = {"train": train, "test": test, "image_size": list(image_size), "seed": seed, "version": 1}
    marker = root / "synthetic.json"
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    width, height = image_size
    generate_split(root, "train", train, width, height, seed)
    generate_split(root, "test", test, width, height, seed + 1)
    atomic_write(marker, lambda f: f.write(json.dumps(settings)))
    return root
