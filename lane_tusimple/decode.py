"""Model outputs back to TuSimple lanes: x at every ``h_sample`` of a frame, -2 where there is no lane."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .labels import TUSIMPLE_ROW_ANCHORS, anchor_rows_in_image, cell_width

__all__ = ["expected_cells", "decode_lanes"]


def expected_cells(logits: torch.Tensor) -> np.ndarray:
    """Per row anchor and lane, the softmax-expected grid cell, or NaN where "no lane" wins: ``(anchors, lanes)``.

    ``logits`` is one frame's ``(griding_num + 1, anchors, lanes)`` output.
    """
    logits = logits.detach().float().cpu()
    griding_num = logits.shape[0] - 1
    prob = torch.softmax(logits[:griding_num], dim=0)
    cells = torch.arange(griding_num, dtype=prob.dtype).view(-1, 1, 1)
    loc = (prob * cells).sum(dim=0)
    absent = logits.argmax(dim=0) == griding_num
    loc[absent] = float("nan")
    return loc.numpy()


def decode_lanes(logits: torch.Tensor, image_width: int, image_height: int, h_samples: Sequence[float],
                 row_anchors: Sequence[float] = TUSIMPLE_ROW_ANCHORS, keep_empty: bool = False) -> list[list[float]]:
    """TuSimple lanes of one frame from its ``(griding_num + 1, anchors, lanes)`` logits.

    A lane's x at a row anchor is the centre of its expected cell in image pixels. At an
    ``h_sample`` between two anchors the x is interpolated when the lane is present at both;
    outside the anchors it is -2. Lanes with no point are dropped unless ``keep_empty``.
    """
    loc = expected_cells(logits)
    griding_num = logits.shape[0] - 1
    width = cell_width(image_width, griding_num)
    xs_at_anchor = (loc + 0.5) * width  # (anchors, lanes), NaN where absent
    anchor_rows = anchor_rows_in_image(row_anchors, image_height)
    hs = np.asarray(h_samples, dtype=np.float64)
    upper = np.searchsorted(anchor_rows, hs - 1e-6)  # first anchor row >= h (within rounding)
    lanes = []
    for lane in range(loc.shape[1]):
        out = np.full(len(hs), -2.0)
        col = xs_at_anchor[:, lane]
        for i, (h, j) in enumerate(zip(hs, upper)):
            if j >= len(anchor_rows):
                continue
            if abs(anchor_rows[j] - h) < 1e-6:
                x = col[j]
            elif j == 0:
                continue
            else:
                t = (h - anchor_rows[j - 1]) / (anchor_rows[j] - anchor_rows[j - 1])
                x = (1 - t) * col[j - 1] + t * col[j]
            if np.isfinite(x):
                out[i] = float(x)
        if keep_empty or (out >= 0).any():
            lanes.append(out.round(1).tolist())
    return lanes
