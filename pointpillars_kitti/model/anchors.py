"""Anchor grids: one set per class, sizes and two rotations at every feature-map cell."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

__all__ = ["make_anchors"]


def make_anchors(point_cloud_range: Sequence[float], feature_size_xy: tuple[int, int], anchor_configs: Sequence[Mapping]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ny, nx, A, 7)`` anchors and the ``(A,)`` class index (0-based) of each anchor slot.

    Centres span the range from edge to edge (``align_center: False``): ``nx`` points from
    x_min to x_max, likewise in y; z is the anchor's bottom height plus half its height.
    """
    nx, ny = feature_size_xy
    xs = torch.linspace(point_cloud_range[0], point_cloud_range[3], nx)
    ys = torch.linspace(point_cloud_range[1], point_cloud_range[4], ny)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    slots, classes = [], []
    for cls_idx, cfg in enumerate(anchor_configs):
        for size in cfg["anchor_sizes"]:
            for bottom in cfg["anchor_bottom_heights"]:
                for rot in cfg["anchor_rotations"]:
                    l, w, h = size
                    a = torch.stack([xx, yy, torch.full_like(xx, bottom + h / 2), torch.full_like(xx, l),
                                     torch.full_like(xx, w), torch.full_like(xx, h), torch.full_like(xx, rot)], dim=-1)
                    slots.append(a)
                    classes.append(cls_idx)
    return torch.stack(slots, dim=2), torch.tensor(classes, dtype=torch.long)
