"""Scatter pillar features onto the bird's-eye-view canvas."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["PillarScatter"]


class PillarScatter(nn.Module):
    """(V, C) pillar features and (V, 4) coords (batch, z, y, x) to a (B, C, ny, nx) image."""

    def __init__(self, num_features: int, grid_xy: tuple[int, int]) -> None:
        super().__init__()
        self.num_features = num_features
        self.nx, self.ny = grid_xy

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int) -> torch.Tensor:
        canvas = features.new_zeros(batch_size, self.num_features, self.ny * self.nx)
        coords = coords.long()
        flat = coords[:, 2] * self.nx + coords[:, 3]
        canvas[coords[:, 0], :, flat] = features
        return canvas.view(batch_size, self.num_features, self.ny, self.nx)
