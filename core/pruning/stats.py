"""Compression statistics: over the pruned layers, over the whole model, and per layer."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from torch import nn

from .names import ParameterNames

__all__ = ["CompressionStats", "compression_stats"]


@dataclass
class CompressionStats:
    """Rates are total weights / non-zero weights (``inf`` when nothing is left)."""

    pruned_layers_rate: float
    whole_model_rate: float
    pruned_layers_total: int
    pruned_layers_nonzero: int
    model_total: int
    model_nonzero: int
    per_layer: list[dict]

    def as_dict(self) -> dict:
        """The statistics as a plain dict (for JSON results files)."""
        return asdict(self)

    def table(self) -> str:
        """The per-layer table as aligned text."""
        width = max([len(r["name"]) for r in self.per_layer] + [5])
        lines = [f"{'layer':<{width}}  {'shape':<18} {'weights':>10} {'non-zero':>10} {'rate':>8}"]
        for r in self.per_layer:
            lines.append(f"{r['name']:<{width}}  {str(tuple(r['shape'])):<18} {r['total']:>10} {r['nonzero']:>10} {_fmt(r['rate']):>8}")
        lines.append(f"{'pruned layers':<{width}}  {'':<18} {self.pruned_layers_total:>10} {self.pruned_layers_nonzero:>10} {_fmt(self.pruned_layers_rate):>8}")
        lines.append(f"{'whole model':<{width}}  {'':<18} {self.model_total:>10} {self.model_nonzero:>10} {_fmt(self.whole_model_rate):>8}")
        return "\n".join(lines)


def _fmt(rate: float) -> str:
    return f"{rate:.2f}x"


def _rate(total: int, nonzero: int) -> float:
    return total / nonzero if nonzero else float("inf")


@torch.no_grad()
def compression_stats(model: nn.Module, layer_names: Iterable[str]) -> CompressionStats:
    """Count non-zeros of ``model``; ``layer_names`` are the pruned parameters.

    Names may carry wrapper components (``module.``, ``_orig_mod.``) or be aliases of tied
    parameters (counted once); a name the model lacks is a :class:`~core.ConfigError`.
    """
    index = ParameterNames(model)
    wanted = {index.lookup(n) for n in layer_names}
    params = list(index.params.items())
    counts = torch.stack([torch.count_nonzero(p.detach()).cpu() for _, p in params]).tolist() if params else []
    rows, model_total, model_nonzero = [], 0, 0
    for (name, p), nonzero in zip(params, counts):
        model_total += p.numel()
        model_nonzero += int(nonzero)
        if name in wanted:
            rows.append({"name": name, "shape": list(p.shape), "total": p.numel(), "nonzero": int(nonzero), "rate": _rate(p.numel(), int(nonzero))})
    total = sum(r["total"] for r in rows)
    nonzero = sum(r["nonzero"] for r in rows)
    return CompressionStats(_rate(total, nonzero), _rate(model_total, model_nonzero), total, nonzero, model_total, model_nonzero, rows)
