"""Speed of the KITTI evaluation against the C++ devkit's.

    python benchmarks/bench_kitti_eval.py [--frames 3769] [--detections 50] [--seed 0]

Generates a KITTI val-sized set (3,769 frames) of label files with about 8 objects a frame
(Car, Pedestrian, Cyclist, Van, DontCare, ...) and result files of 50 scored detections a frame
(jittered copies of most labelled objects, the rest scattered false positives), writes them in
KITTI's text format, and times ``python -m pointpillars_kitti.evaluate``'s work on them, both
overlap sets (official and loose): reading the files, then all AP numbers. The C++ devkit
(``evaluate_object_3d_offline``) took 15.5 s for 3,740 frames, about 4.1 ms per frame.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pointpillars_kitti.evaluate import flat_metrics, frame_list, load_frames  # noqa: E402

DEVKIT_MS_PER_FRAME = 15.5 / 3740 * 1000
CLASSES = np.array(["Car", "Pedestrian", "Cyclist", "Van", "Person_sitting", "Truck", "DontCare"])
CLASS_P = np.array([0.45, 0.15, 0.08, 0.06, 0.02, 0.04, 0.20])
SIZES = {"Car": (1.53, 1.63, 3.88), "Pedestrian": (1.76, 0.66, 0.84), "Cyclist": (1.74, 0.6, 1.76), "Van": (2.2, 1.9, 5.1),
         "Person_sitting": (1.3, 0.6, 0.8), "Truck": (3.2, 2.6, 10.0), "DontCare": (-1, -1, -1)}
FOCAL, CU, CV = 721.5, 609.6, 172.9


def _objects(rng: np.random.Generator, n: int, names: np.ndarray) -> np.ndarray:
    """(n, 15) numeric label fields of objects in front of the camera, with consistent 2D boxes."""
    x, z = rng.uniform(-15, 15, n), rng.uniform(5, 60, n)
    dims = np.array([SIZES[c] for c in names]) * rng.uniform(0.9, 1.1, (n, 3))
    y = np.full(n, 1.65) + rng.normal(0, 0.05, n)
    ry = rng.uniform(-np.pi, np.pi, n)
    h = np.abs(dims[:, 0])
    left = CU + FOCAL * (x - np.abs(dims[:, 2]) / 2) / z
    right = CU + FOCAL * (x + np.abs(dims[:, 2]) / 2) / z
    top, bottom = CV + FOCAL * (y - h) / z, CV + FOCAL * y / z
    bbox = np.column_stack([np.clip(left, 0, 1241), np.clip(top, 0, 374), np.clip(right, 0, 1241), np.clip(bottom, 0, 374)])
    alpha = ry - np.arctan2(x, z)
    trunc = np.round(rng.choice([0.0, 0.0, 0.0, 0.2, 0.4, 0.6], n), 2)
    occ = rng.choice([0, 0, 1, 2, 3], n).astype(float)
    out = np.column_stack([trunc, occ, alpha, bbox, dims, x, y, z, ry])
    dc = names == "DontCare"
    out[dc, 0], out[dc, 1], out[dc, 2] = -1, -1, -10
    out[dc, 7:13] = [-1, -1, -1, -1000, -1000, -1000]
    out[dc, 13] = -10
    return out


def _line(name: str, v: np.ndarray, score: float | None = None) -> str:
    text = f"{name} {v[0]:.2f} {int(v[1])} " + " ".join(f"{x:.2f}" for x in v[2:])
    return text + (f" {score:.4f}" if score is not None else "")


def generate(root: Path, frames: int, detections: int, seed: int) -> tuple[Path, Path]:
    """Label and result folders of ``frames`` generated frames under ``root``."""
    rng = np.random.default_rng(seed)
    labels, results = root / "label_2", root / "results"
    labels.mkdir(parents=True)
    results.mkdir()
    for f in range(frames):
        n = int(rng.integers(5, 12))  # about 8 objects, DontCare included
        names = rng.choice(CLASSES, n, p=CLASS_P)
        gt = _objects(rng, n, names)
        (labels / f"{f:06d}.txt").write_text("".join(_line(c, v) + "\n" for c, v in zip(names, gt)))
        real = np.flatnonzero((names != "DontCare") & (rng.random(n) < 0.8))
        det = gt[real].copy()
        det[:, 3:7] += rng.normal(0, 4, (len(real), 4))
        det[:, 10:13] += rng.normal(0, 0.12, (len(real), 3))
        det[:, 13] += rng.normal(0, 0.1, len(real))
        det_names = list(names[real])
        rest = detections - len(real)
        fake_names = rng.choice(CLASSES[:3], rest, p=[0.6, 0.25, 0.15])
        det = np.vstack([det, _objects(rng, rest, fake_names)])
        det[:, 0], det[:, 1] = 0, 0
        det_names += list(fake_names)
        det_names = [c if c in ("Car", "Pedestrian", "Cyclist") else "Car" for c in det_names]
        scores = np.concatenate([rng.uniform(0.3, 1.0, len(real)), rng.uniform(0.0, 0.6, rest)])
        (results / f"{f:06d}.txt").write_text("".join(_line(c, v, s) + "\n" for c, v, s in zip(det_names, det, scores)))
    return labels, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3769)
    parser.add_argument("--detections", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        labels, results = generate(Path(tmp), args.frames, args.detections, args.seed)
        start = time.perf_counter()
        ids = frame_list(labels, None)
        gts, dts = load_frames(labels, results, ids)
        read = time.perf_counter() - start
        metrics = flat_metrics(gts, dts)
        total = time.perf_counter() - start
    n_gt = sum(len(g["name"]) for g in gts)
    n_dt = sum(len(d["name"]) for d in dts)
    ms = 1000 * total / args.frames
    print(f"{args.frames} frames, {n_gt / args.frames:.1f} labels and {n_dt / args.frames:.1f} detections a frame, "
          f"overlap sets official + loose ({len(metrics)} numbers)")
    print(f"read {read:.2f} s, evaluate {total - read:.2f} s, total {total:.2f} s")
    print(f"ms per frame: {ms:.2f} (this evaluation)  vs  {DEVKIT_MS_PER_FRAME:.2f} (C++ devkit: 15.5 s for 3,740 frames)  "
          f"-> {DEVKIT_MS_PER_FRAME / ms:.1f}x the devkit's speed")
    print(f"e.g. 3d/official/R40/Car/moderate = {metrics['3d/official/R40/Car/moderate']:.2f}, "
          f"bev/loose/R11/Pedestrian/hard = {metrics['bev/loose/R11/Pedestrian/hard']:.2f}")


if __name__ == "__main__":
    main()
