"""Anchor labels and regression targets from ground-truth boxes (axis-aligned BEV matching)."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .box_coder import encode_boxes

__all__ = ["nearest_bev_boxes", "axis_aligned_iou", "assign_targets"]


def nearest_bev_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 4) axis-aligned BEV boxes (x1, y1, x2, y2) of the nearer of 0 and 90 degrees to each box's heading."""
    rot = boxes[:, 6] - torch.floor(boxes[:, 6] / math.pi + 0.5) * math.pi
    swap = rot.abs() > math.pi / 4
    dx = torch.where(swap, boxes[:, 4], boxes[:, 3])
    dy = torch.where(swap, boxes[:, 3], boxes[:, 4])
    return torch.stack([boxes[:, 0] - dx / 2, boxes[:, 1] - dy / 2, boxes[:, 0] + dx / 2, boxes[:, 1] + dy / 2], dim=1)


def axis_aligned_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, M) IoU of (x1, y1, x2, y2) boxes."""
    iw = (torch.minimum(a[:, None, 2], b[None, :, 2]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    ih = (torch.minimum(a[:, None, 3], b[None, :, 3]) - torch.maximum(a[:, None, 1], b[None, :, 1])).clamp(min=0)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-6)


def assign_targets(anchors: torch.Tensor, anchor_classes: torch.Tensor, gt_boxes: torch.Tensor,
                   matched: Sequence[float], unmatched: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels (N_anchors,) and box targets (N_anchors, 7) of one frame.

    ``anchors`` is (N, 7) with the (N,) 0-based ``anchor_classes``; ``gt_boxes`` is (M, 8) with a
    1-based class in the last column (0 rows are padding). Per class, an anchor is positive
    (label = class) when its BEV IoU with a box of that class reaches ``matched[c]`` or when
    it is a box's best anchor, negative (0) below ``unmatched[c]``, ignored (-1) in between.
    """
    n = anchors.shape[0]
    labels = torch.full((n,), -1, dtype=torch.long, device=anchors.device)
    targets = torch.zeros((n, 7), dtype=anchors.dtype, device=anchors.device)
    gt_boxes = gt_boxes[gt_boxes[:, 7] > 0]
    for c in range(int(anchor_classes.max()) + 1):
        idx = torch.nonzero(anchor_classes == c).squeeze(1)
        gts = gt_boxes[gt_boxes[:, 7].long() == c + 1]
        if len(gts) == 0:
            labels[idx] = 0
            continue
        iou = axis_aligned_iou(nearest_bev_boxes(anchors[idx]), nearest_bev_boxes(gts[:, :7]))
        best_iou, best_gt = iou.max(dim=1)
        cls_labels = torch.full((len(idx),), -1, dtype=torch.long, device=anchors.device)
        cls_labels[best_iou < unmatched[c]] = 0
        positive = best_iou >= matched[c]
        gt_best = iou.max(dim=0).values
        forced_a, forced_g = torch.nonzero((iou == gt_best[None, :]) & (gt_best[None, :] > 0), as_tuple=True)
        gt_of_anchor = best_gt.clone()
        gt_of_anchor[forced_a] = forced_g
        positive[forced_a] = True
        cls_labels[positive] = c + 1
        labels[idx] = cls_labels
        pos_idx = idx[positive]
        targets[pos_idx] = encode_boxes(gts[gt_of_anchor[positive], :7], anchors[pos_idx])
    return labels, targets
