"""UFLD's training losses: softmax focal loss on the row-anchor classes, the structural
similarity and shape losses, and cross-entropy on the auxiliary segmentation."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["softmax_focal_loss", "similarity_loss", "shape_loss", "UFLDLoss"]


def softmax_focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0, ignore_index: int = 255) -> Tensor:
    """Mean over labelled positions of ``-(1 - p_t)^gamma log p_t``; ``logits`` (N, C, ...), ``target`` (N, ...)."""
    log_p = F.log_softmax(logits, dim=1)
    factor = (1.0 - log_p.exp()).pow(gamma)
    return F.nll_loss(factor * log_p, target, ignore_index=ignore_index)


def similarity_loss(logits: Tensor) -> Tensor:
    """Smooth-L1 size of the difference between the logits of adjacent row anchors; ``logits`` (N, C, anchors, lanes)."""
    diff = logits[:, :, :-1, :] - logits[:, :, 1:, :]
    return F.smooth_l1_loss(diff, torch.zeros_like(diff))


def shape_loss(logits: Tensor) -> Tensor:
    """Second-order smoothness of the expected lane position over the upper half of the row anchors.

    The expected cell index (softmax over the grid cells, "no lane" left out) is differenced
    between adjacent anchors; the loss is the mean L1 change of that difference.
    """
    n, c, rows, _ = logits.shape
    prob = F.softmax(logits[:, : c - 1], dim=1)
    cells = torch.arange(c - 1, dtype=prob.dtype, device=prob.device).view(1, -1, 1, 1)
    position = (prob * cells).sum(dim=1)  # (N, anchors, lanes)
    steps = rows // 2
    first = position[:, 0:steps] - position[:, 1:steps + 1]
    if first.shape[1] < 2:
        return logits.new_zeros(())
    return (first[:, :-1] - first[:, 1:]).abs().mean()


@dataclass
class UFLDLoss:
    """Weighted sum of the UFLD losses (defaults: UFLD's TuSimple config)."""

    cls_weight: float = 1.0
    sim_weight: float = 1.0
    shape_weight: float = 0.0
    seg_weight: float = 1.0
    focal_gamma: float = 2.0

    def __call__(self, output, cls_target: Tensor, seg_target: Tensor | None = None) -> Tensor:
        logits, seg = output if isinstance(output, tuple) else (output, None)
        loss = self.cls_weight * softmax_focal_loss(logits, cls_target, self.focal_gamma)
        if self.sim_weight:
            loss = loss + self.sim_weight * similarity_loss(logits)
        if self.shape_weight:
            loss = loss + self.shape_weight * shape_loss(logits)
        if seg is not None and seg_target is not None and self.seg_weight:
            loss = loss + self.seg_weight * F.cross_entropy(seg, seg_target)
        return loss
