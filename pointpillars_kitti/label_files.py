"""KITTI label and result files read straight into the column arrays the evaluation takes.

A label line has 15 fields (type, truncated, occluded, alpha, 2D box, h w l, x y z, ry); a
result line adds the score as a 16th. A whole file is converted at once; only when that fails
is it read line by line, to name the line that is wrong.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import DataError

__all__ = ["read_annotation_file", "empty_annotations", "LABEL_FIELDS", "RESULT_FIELDS"]

LABEL_FIELDS = 15
RESULT_FIELDS = 16


def empty_annotations() -> dict[str, np.ndarray]:
    """The column arrays of a frame without objects."""
    return _columns(np.zeros(0, dtype=str), np.zeros((0, RESULT_FIELDS - 1)))


def _columns(names: np.ndarray, values: np.ndarray) -> dict[str, np.ndarray]:
    n = len(names)
    return {
        "name": names.astype(str),
        "truncated": values[:, 0].copy(),
        "occluded": values[:, 1].copy(),
        "alpha": values[:, 2].copy(),
        "bbox": values[:, 3:7].copy(),
        "dimensions": values[:, 7:10].copy(),  # h, w, l
        "location": values[:, 10:13].copy(),
        "rotation_y": values[:, 13].copy(),
        "score": values[:, 14].copy() if values.shape[1] > 14 else np.zeros(n),
    }


def _bad_line(path: Path, lines: list[str], fields: tuple[int, ...]) -> DataError:
    """The error naming the first line with a wrong field count or a field that is not a number."""
    what = "a label line has 15 fields" if fields == (LABEL_FIELDS, RESULT_FIELDS) else "a result line has 16 fields (the score last)"
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in fields:
            return DataError(f"{path}:{number}: {what}, got {len(parts)}: '{line.strip()}'; fix or remove that line")
        for part in parts[1:]:
            try:
                float(part)
            except ValueError:
                return DataError(f"{path}:{number}: '{part}' is not a number (fields 2-{len(parts)} are numbers); fix or remove that line")
    return DataError(f"{path}: cannot be read as KITTI {what.split()[1]} lines; fix the file")


def read_annotation_file(path: str | Path, result: bool = False, missing_ok: bool = False) -> dict[str, np.ndarray]:
    """Column arrays of a label file (15 fields, 16 allowed) or a result file (16 fields, score last).

    A missing file is a :class:`DataError` naming it, or no objects with ``missing_ok``; a bad
    line is a :class:`DataError` naming the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        if missing_ok:
            return empty_annotations()
        raise DataError(f"{path} not found; every frame needs a label file (check --label-dir and --split)") from None
    except (IsADirectoryError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not a KITTI text file ({type(err).__name__}); point the folder at label_2-style .txt files") from None
    lines = text.splitlines()
    rows = [line.split() for line in lines if line.strip()]
    if not rows:
        return empty_annotations()
    fields = (RESULT_FIELDS,) if result else (LABEL_FIELDS, RESULT_FIELDS)
    if any(len(r) not in fields for r in rows):
        raise _bad_line(path, lines, fields)
    end = RESULT_FIELDS if result else LABEL_FIELDS  # a label's optional 16th field (a score) is not read
    try:
        values = np.array([r[1:end] for r in rows], dtype=np.float64)
    except ValueError:
        raise _bad_line(path, lines, fields) from None
    return _columns(np.array([r[0] for r in rows]), values)
