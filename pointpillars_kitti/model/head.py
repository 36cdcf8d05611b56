"""Single anchor head: 1x1 convs for class scores, box codes and direction bins at every anchor."""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["AnchorHead"]


class AnchorHead(nn.Module):
    """Outputs ``(B, ny*nx*A, C)`` class logits, ``(B, ny*nx*A, 7)`` codes and ``(B, ny*nx*A, bins)`` direction logits."""

    def __init__(self, in_channels: int, num_anchors_per_cell: int, num_classes: int, num_dir_bins: int = 2, prior_prob: float = 0.01) -> None:
        super().__init__()
        self.num_classes, self.num_dir_bins = num_classes, num_dir_bins
        self.conv_cls = nn.Conv2d(in_channels, num_anchors_per_cell * num_classes, 1)
        self.conv_box = nn.Conv2d(in_channels, num_anchors_per_cell * 7, 1)
        self.conv_dir_cls = nn.Conv2d(in_channels, num_anchors_per_cell * num_dir_bins, 1)
        nn.init.constant_(self.conv_cls.bias, -math.log((1 - prior_prob) / prior_prob))
        nn.init.normal_(self.conv_box.weight, mean=0.0, std=0.001)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b = x.shape[0]

        def flat(t: torch.Tensor, k: int) -> torch.Tensor:
            return t.permute(0, 2, 3, 1).reshape(b, -1, k)

        return {"cls_preds": flat(self.conv_cls(x), self.num_classes), "box_preds": flat(self.conv_box(x), 7),
                "dir_preds": flat(self.conv_dir_cls(x), self.num_dir_bins)}
