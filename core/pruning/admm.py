"""ADMM weight pruning (Zhang et al., ECCV 2018), the paper's baseline.

Scaled form with U = Lambda / rho: the W step is SGD with the extra gradient
``rho (W - Z + U)``; every update sets ``Z = Proj_S(W + U)`` and then ``U += W - Z``.
There is no surrogate condition: the dual is updated every time Z is.
"""
from __future__ import annotations

from typing import Any

import torch

from .pruner import DualPruner, squared_norms_and_inner

__all__ = ["ADMM"]


class ADMM(DualPruner):
    """ADMM weight pruning with a fixed penalty ``rho``. Call :meth:`update` once per epoch.

    ``variant="authors"`` uses the authors' percentile projection and, by default, their gradient
    amplification (:mod:`core.authors`); the update itself is the same.
    """

    method = "admm"

    def _penalty_offset(self) -> list[torch.Tensor]:
        return [self.rho * (z - u) for z, u in zip(self.Z, self.dual)]  # rho (W - Z + U) = rho W - offset

    @torch.no_grad()
    def _update(self, loss: float | None) -> dict[str, Any]:
        W = [p.detach() for p in self.params]
        Z = self._projected(self.dual)  # Z^{k+1} = Proj(W^{k+1} + U^k)
        gap = torch._foreach_sub(W, Z)  # W^{k+1} - Z^{k+1}
        sq, inner = squared_norms_and_inner(gap, self.dual)
        torch._foreach_add_(self.dual, gap)  # U^{k+1} = U^k + W^{k+1} - Z^{k+1}
        if self.amplify:  # the authors' U = W - Z + U keeps W in the graph: one more rho (W - Z + U) per update
            self.gain = [g + 1.0 for g in self.gain]
        self.Z = Z
        rho = self.rho
        return {
            "k": self.k,
            "loss": loss,
            # augmented Lagrangian (6) with Lambda = rho U^k, as SLR records it
            "mixed_loss": None if loss is None else loss + rho * sum(inner) + rho / 2 * sum(sq),
            "condition": None,
            "accepted": True,
            "violation": sum(sq) ** 0.5,
            "violation_per_layer": self._layer_record([v**0.5 for v in sq]),
        }
