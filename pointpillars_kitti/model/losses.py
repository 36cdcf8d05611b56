"""Sigmoid focal loss, weighted smooth-L1 and the direction-bin loss of the anchor head."""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["sigmoid_focal_loss", "weighted_smooth_l1", "sin_difference", "direction_targets"]


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Element-wise focal loss ``-alpha_t (1 - p_t)^gamma log p_t`` times per-anchor ``weights``."""
    prob = torch.sigmoid(logits)
    alpha_t = targets * alpha + (1 - targets) * (1 - alpha)
    one_minus_pt = targets * (1 - prob) + (1 - targets) * prob
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return alpha_t * one_minus_pt.pow(gamma) * bce * weights.unsqueeze(-1)


def weighted_smooth_l1(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, code_weights: Sequence[float], beta: float = 1.0 / 9.0) -> torch.Tensor:
    """Element-wise smooth-L1 (quadratic below ``beta``) with per-code and per-anchor weights."""
    target = torch.where(torch.isnan(target), pred.detach(), target)
    diff = (pred - target) * pred.new_tensor(code_weights)
    ad = diff.abs()
    loss = torch.where(ad < beta, 0.5 * ad ** 2 / beta, ad - 0.5 * beta)
    return loss * weights.unsqueeze(-1)


def sin_difference(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the angle codes so their difference is ``sin(pred - target)``."""
    a, b = pred[..., 6:7], target[..., 6:7]
    pred = torch.cat([pred[..., :6], torch.sin(a) * torch.cos(b)], dim=-1)
    target = torch.cat([target[..., :6], torch.cos(a) * torch.sin(b)], dim=-1)
    return pred, target


def direction_targets(anchors: torch.Tensor, box_targets: torch.Tensor, dir_offset: float, num_bins: int = 2) -> torch.Tensor:
    """Direction bin of each target heading, ``floor(((r - offset) mod 2 pi) / (2 pi / bins))``."""
    heading = box_targets[..., 6] + anchors[..., 6]
    shifted = torch.remainder(heading - dir_offset, 2 * math.pi)
    return torch.floor(shifted / (2 * math.pi / num_bins)).long().clamp(0, num_bins - 1)
