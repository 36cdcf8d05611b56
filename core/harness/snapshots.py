"""Weight snapshots for the heatmap figures (13-24): |W| of a few pruned layers, cropped to a
small 2-D block, saved beside a run's results so that figures need no checkpoint or model code.

A snapshot file holds ``{stage: {layer: |W| block}}`` with stages ``dense``, ``after_training``
and ``after_hard_pruning``; a results file names it (relative to itself) under ``heatmaps``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from .results import atomic_torch_save
from ..pruning.sparsity import normalize_name

__all__ = ["SNAPSHOT_FILE", "SNAPSHOT_STAGES", "pick_layers", "weight_snapshot", "save_snapshots"]

SNAPSHOT_FILE = "heatmaps.pt"
SNAPSHOT_STAGES = ("dense", "after_training", "after_hard_pruning")


def pick_layers(names: Sequence[str], count: int = 5) -> list[str]:
    """``count`` names spread evenly over ``names`` (first and last included)."""
    if len(names) <= count:
        return list(names)
    step = (len(names) - 1) / (count - 1)
    return [names[round(i * step)] for i in range(count)]


@torch.no_grad()
def weight_snapshot(model: nn.Module, names: Sequence[str], size: int = 64) -> dict[str, torch.Tensor]:
    """|W| of each named weight as (out, in * kh * kw), its top-left ``size`` x ``size`` block, float16."""
    params = {normalize_name(n): p for n, p in model.named_parameters()}
    blocks = {}
    for name in map(normalize_name, names):
        blocks[name] = params[name].detach().abs().flatten(1)[:size, :size].to("cpu", torch.float16).clone()
    return blocks


def save_snapshots(path: str | Path, snapshots: Mapping[str, Mapping[str, torch.Tensor]]) -> Path:
    """Write ``{stage: {layer: |W| block}}`` to ``path``, atomically."""
    atomic_torch_save({stage: dict(layers) for stage, layers in snapshots.items()}, path)
    return Path(path)
