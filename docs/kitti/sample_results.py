"""Result folders made from KITTI label files, for running the evaluate command on real labels.

    python docs/kitti/sample_results.py LABEL_DIR OUT_DIR

Writes OUT_DIR/exact (every non-DontCare label with a score), OUT_DIR/shifted (x moved
0.4 m, alternately left and right) and OUT_DIR/jittered (location, size and heading with
Gaussian noise of 0.15 m, 5 % and 0.1 rad; 2D box by 3 px; seed 0).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(label_dir: Path, out: Path) -> None:
    rng = np.random.default_rng(0)
    kinds = {"exact": None, "shifted": None, "jittered": None}
    for kind in kinds:
        (out / kind).mkdir(parents=True, exist_ok=True)
    for path in sorted(label_dir.glob("*.txt")):
        rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("DontCare")]
        lines = {kind: [] for kind in kinds}
        for i, row in enumerate(rows):
            vals = np.array([float(v) for v in row[1:15]])
            score = 0.9 - 0.01 * i
            shifted = vals.copy()
            shifted[10] += 0.4 * (1 if i % 2 else -1)
            jit = vals.copy()
            jit[3:7] += rng.normal(0, 3, 4)
            jit[7:10] *= 1 + rng.normal(0, 0.05, 3)
            jit[10:13] += rng.normal(0, 0.15, 3)
            jit[13] += rng.normal(0, 0.1)
            for kind, v in (("exact", vals), ("shifted", shifted), ("jittered", jit)):
                lines[kind].append(" ".join([row[0]] + [f"{x:.2f}" for x in v]) + f" {score:.2f}\n")
        for kind in kinds:
            (out / kind / path.name).write_text("".join(lines[kind]))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
