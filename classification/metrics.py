"""Top-k accuracy."""
from __future__ import annotations

from typing import Iterable

import torch

__all__ = ["topk_correct", "topk_accuracy"]


@torch.no_grad()
def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Iterable[int] = (1, 5)) -> dict[int, torch.Tensor]:
    """Number of samples whose target is among the ``k`` highest logits, for each ``k``.

    ``k`` larger than the number of classes counts every sample as correct. Ties between
    logits are broken by ``torch.topk``'s order. Counts stay on the logits' device.
    """
    ks = list(ks)
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"logits must be N x C and targets N, got {tuple(logits.shape)} and {tuple(targets.shape)}")
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hits = top.eq(targets.view(-1, 1))
    return {k: hits[:, : min(k, kmax)].any(dim=1).sum() for k in ks}


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, ks: Iterable[int] = (1, 5)) -> dict[str, float]:
    """``{"top1": %, "top5": %}`` (in percent) for the given ``ks``."""
    counts = topk_correct(logits, targets, ks)
    n = max(len(targets), 1)
    return {f"top{k}": 100.0 * float(c) / n for k, c in counts.items()}
