"""Points to pillars (voxels), in plain torch.

Matches ``spconv.pytorch.utils.PointToVoxel``: a point belongs to the voxel
``floor((p - range_min) / voxel_size)`` when that index lies inside the grid; voxels are
numbered in the order their first point appears, the first ``max_points`` points of each
voxel are kept in input order, and voxels past ``max_voxels`` are dropped.
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["Voxelizer", "grid_size"]


def grid_size(point_cloud_range: Sequence[float], voxel_size: Sequence[float]) -> tuple[int, int, int]:
    """Voxels along x, y, z."""
    return tuple(int(round((point_cloud_range[i + 3] - point_cloud_range[i]) / voxel_size[i])) for i in range(3))


class Voxelizer:
    """Callable turning an (N, C) point tensor into ``(voxels, coords_zyx, num_points)``."""

    def __init__(self, voxel_size: Sequence[float], point_cloud_range: Sequence[float], max_points: int, max_voxels: int) -> None:
        self.voxel_size = torch.tensor(voxel_size, dtype=torch.float32)
        self.range_min = torch.tensor(point_cloud_range[:3], dtype=torch.float32)
        self.grid = torch.tensor(grid_size(point_cloud_range, voxel_size), dtype=torch.long)
        self.max_points, self.max_voxels = int(max_points), int(max_voxels)

    def __call__(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device = points.device
        coords = torch.floor((points[:, :3] - self.range_min.to(device)) / self.voxel_size.to(device)).long()
        grid = self.grid.to(device)
        inside = ((coords >= 0) & (coords < grid)).all(dim=1)
        idx = torch.nonzero(inside).squeeze(1)
        coords = coords[idx]
        flat = (coords[:, 2] * grid[1] + coords[:, 1]) * grid[0] + coords[:, 0]
        uniq, inverse = torch.unique(flat, return_inverse=True)
        n_uniq = len(uniq)
        order_in = torch.arange(len(flat), device=device)
        first = torch.full((n_uniq,), len(flat), dtype=torch.long, device=device).scatter_reduce(0, inverse, order_in, "amin")
        voxel_order = torch.argsort(first)  # voxels by first appearance
        rank = torch.empty_like(voxel_order)
        rank[voxel_order] = torch.arange(n_uniq, device=device)
        vid = rank[inverse]  # voxel number of every point
        keep_voxel = vid < self.max_voxels
        # position of each point inside its voxel, in input order
        sort_idx = torch.sort(vid * len(flat) + order_in).indices
        sorted_vid = vid[sort_idx]
        starts = torch.searchsorted(sorted_vid, sorted_vid, right=False)
        slot = torch.empty_like(vid)
        slot[sort_idx] = torch.arange(len(flat), device=device) - starts
        keep = keep_voxel & (slot < self.max_points)
        n_vox = min(n_uniq, self.max_voxels)
        voxels = points.new_zeros((n_vox, self.max_points, points.shape[1]))
        voxels[vid[keep], slot[keep]] = points[idx[keep]]
        num_points = torch.zeros(n_vox, dtype=torch.long, device=device).scatter_add_(0, vid[keep], torch.ones_like(vid[keep]))
        coords_zyx = torch.zeros((n_vox, 3), dtype=torch.long, device=device)
        first_point = first[voxel_order][:n_vox]
        coords_zyx[:] = coords[first_point].flip(1)
        return voxels, coords_zyx.int(), num_points.int()
