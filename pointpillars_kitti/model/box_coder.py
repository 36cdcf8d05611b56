"""Residual box coding of lidar boxes against anchors."""
from __future__ import annotations

import torch

__all__ = ["encode_boxes", "decode_boxes"]


def encode_boxes(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Targets ``((x-xa)/d, (y-ya)/d, (z-za)/ha, log(l/la), log(w/wa), log(h/ha), r-ra)``, d the anchor's BEV diagonal."""
    anchors = anchors.clone()
    anchors[..., 3:6] = anchors[..., 3:6].clamp(min=1e-5)
    boxes = boxes.clone()
    boxes[..., 3:6] = boxes[..., 3:6].clamp(min=1e-5)
    diag = torch.sqrt(anchors[..., 3] ** 2 + anchors[..., 4] ** 2)
    return torch.stack([
        (boxes[..., 0] - anchors[..., 0]) / diag,
        (boxes[..., 1] - anchors[..., 1]) / diag,
        (boxes[..., 2] - anchors[..., 2]) / anchors[..., 5],
        torch.log(boxes[..., 3] / anchors[..., 3]),
        torch.log(boxes[..., 4] / anchors[..., 4]),
        torch.log(boxes[..., 5] / anchors[..., 5]),
        boxes[..., 6] - anchors[..., 6],
    ], dim=-1)


def decode_boxes(codes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_boxes`."""
    diag = torch.sqrt(anchors[..., 3] ** 2 + anchors[..., 4] ** 2)
    return torch.stack([
        codes[..., 0] * diag + anchors[..., 0],
        codes[..., 1] * diag + anchors[..., 1],
        codes[..., 2] * anchors[..., 5] + anchors[..., 2],
        torch.exp(codes[..., 3]) * anchors[..., 3],
        torch.exp(codes[..., 4]) * anchors[..., 4],
        torch.exp(codes[..., 5]) * anchors[..., 5],
        codes[..., 6] + anchors[..., 6],
    ], dim=-1)
