"""Surrogate Lagrangian Relaxation (Gurevin et al., 2021): eqs. (8)-(14) and Algorithm 1.

Choices the paper leaves open, made here and nowhere else:

* Z^0 = Proj_S(W^0) and Lambda^0 = 0; W^{k-1} is a *copy* of the weights at the previous
  update (not a reference to the live tensor), so ``||W^{k-1} - Z^{k-1}||`` is the old gap.
* f(W^k) in the surrogate condition (11) is the mean training loss of the epoch (or of the
  calls since the last update) that produced W^k. f(W^0) is unknown unless
  :meth:`SLR.set_reference_loss` gives it; without it the first condition is not evaluated
  and the first multiplier update is taken (recorded as ``condition: None``).
* The stepsize (13) is kept per layer, since its norms carry the layer index n; a layer whose
  new gap is exactly zero keeps its stepsize (its multiplier update is zero anyway).
* k advances once per update: the first update uses k = 1, so alpha^1 = 1 - 1/M.
* After a rejected condition the multipliers and stepsizes stay, while W^k, Z^k become the new
  "previous" point (Algorithm 1 keeps W^k and Z^k, discards Lambda^{k+1}).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from ..errors import ConfigError
from .pruner import DualPruner, squared_norms_and_inner

__all__ = ["SLR", "slr_alpha", "slr_stepsize"]


def slr_alpha(k: int, M: float, r: float) -> float:
    """alpha^k = 1 - 1 / (M * k^(1 - 1/k^r)), eq. (14)."""
    return 1.0 - 1.0 / (M * k ** (1.0 - 1.0 / k**r))


def slr_stepsize(s_prev: float, alpha: float, gap_prev: float, gap: float) -> float:
    """s^k = alpha^k s^{k-1} ||W^{k-1} - Z^{k-1}|| / ||W^k - Z^k||, eq. (13)."""
    return alpha * s_prev * gap_prev / gap if gap > 0 else s_prev


class SLR(DualPruner):
    """SLR weight pruning. Call :meth:`update` once per epoch with the epoch's mean loss.

    Args:
        rho: penalty coefficient (paper: 0.1).
        s0: initial stepsize s^0 (paper: 1e-4; the authors' scripts: 1e-2).
        M, r: stepsize-setting parameters of eq. (14) (paper: 200, 0.1; the authors' scripts:
            300, 0.1); M > 1, 0 < r < 1.
        variant: ``"paper"`` (eqs. 8-14, this module) or ``"authors"``: the update schedule,
            state, stepsize and projection of the authors' public code (:mod:`core.authors`).
        amplify: the authors' gradient amplification (default: on for ``"authors"`` only).
    """

    method = "slr"

    def __init__(self, model, config, rho: float = 0.1, s0: float = 1e-4, M: float = 200.0, r: float = 0.1, update_every: int = 1,
                 variant: str = "paper", amplify: bool | None = None) -> None:
        if not M > 1:
            raise ConfigError(f"M = {M} must be > 1 (paper: 200)")
        if not 0 < r < 1:
            raise ConfigError(f"r = {r} must lie in (0, 1) (paper: 0.1)")
        if not s0 > 0:
            raise ConfigError(f"s0 = {s0} must be positive (paper: 1e-4)")
        super().__init__(model, config, rho=rho, update_every=update_every, variant=variant, amplify=amplify)
        self.s0, self.M, self.r = float(s0), float(M), float(r)
        self.s = [self.s0] * len(self.layers)
        with torch.no_grad():
            self.W_prev = [p.detach().clone() for p in self.params]  # W^0, a copy
        self.prev_loss: float | None = None
        # the authors' state (core/authors.py): W^{k-1} = 0 until the first update, then the live
        # weights; Z^{k-1} = 0; the previous and current epoch losses start at 0; their own k
        self.W_prev_live = False
        self.Z_prev = [torch.zeros_like(z) for z in self.Z] if self.variant == "authors" else []  # no copy for the paper's SLR
        self.loss_prev = self.loss_now = 0.0
        self.k_taken = 1

    def _penalty_offset(self) -> list[torch.Tensor]:
        return [self.rho * z - lam for z, lam in zip(self.Z, self.dual)]  # eq. (8): Lambda + rho (W - Z) = rho W - offset

    def set_reference_loss(self, loss: float) -> None:
        """Give f(W^0), so that the first surrogate condition can be evaluated."""
        self.prev_loss = float(loss)

    @torch.no_grad()
    def _update(self, loss: float | None) -> dict[str, Any]:
        if self.variant == "authors":
            from .authors import authors_slr_update

            return authors_slr_update(self, loss)
        W = [p.detach() for p in self.params]
        Z = self._projected(self.dual, 1.0 / self.rho)  # eq. (10): Z^k = Proj(W^k + Lambda^k / rho)
        gap = torch._foreach_sub(W, Z)  # W^k - Z^k
        gap_prev = torch._foreach_sub(self.W_prev, self.Z)  # W^{k-1} - Z^{k-1}
        sq, inner = squared_norms_and_inner(gap, self.dual)  # ||W^k - Z^k||^2, <Lambda^k, W^k - Z^k>
        sq_prev, inner_prev = squared_norms_and_inner(gap_prev, self.dual)  # the same at (W^{k-1}, Z^{k-1})
        record = self._multiplier_step(loss, gap, sq, sq_prev, inner, inner_prev)
        torch._foreach_copy_(self.W_prev, W)
        self.Z = Z
        if loss is not None:
            self.prev_loss = loss
        return record

    def _multiplier_step(self, loss, gap, sq, sq_prev, inner, inner_prev) -> dict[str, Any]:
        """Surrogate condition (11), then the multiplier (12) and stepsize (13)-(14) updates."""
        k, rho = self.k, self.rho
        mixed = None if loss is None else loss + sum(inner) + rho / 2 * sum(sq)  # L(W^k, Z^k, Lambda^k)
        mixed_prev = None if self.prev_loss is None else self.prev_loss + sum(inner_prev) + rho / 2 * sum(sq_prev)  # L(W^{k-1}, Z^{k-1}, Lambda^k)
        condition = None if mixed is None or mixed_prev is None else mixed < mixed_prev  # eq. (11)
        alpha = slr_alpha(k, self.M, self.r)  # eq. (14)
        if condition is not False:
            self.s = [slr_stepsize(s, alpha, a**0.5, b**0.5) for s, a, b in zip(self.s, sq_prev, sq)]  # eq. (13)
            torch._foreach_add_(self.dual, torch._foreach_mul(gap, self.s))  # eq. (12): Lambda += s^k (W^k - Z^k)
            if self.amplify:  # an ablation: the authors' gradient through Lambda = s W + ... (core/authors.py)
                self.gain = [g + s / rho for g, s in zip(self.gain, self.s)]
        return {
            "k": k,
            "loss": loss,
            "mixed_loss": mixed,
            "mixed_loss_prev": mixed_prev,
            "condition": condition,
            "accepted": condition is not False,
            "alpha": alpha,
            "s": self._layer_record(self.s),
            "violation": sum(sq) ** 0.5,
            "violation_per_layer": self._layer_record([v**0.5 for v in sq]),
        }

    def _extra_state(self) -> dict[str, Any]:
        return {
            "s": list(self.s),
            "s0": self.s0,
            "M": self.M,
            "r": self.r,
            "prev_loss": self.prev_loss,
            "W_prev": {n: w.clone() for n, w in zip(self.names, self.W_prev)},
            "authors": {"W_prev_live": self.W_prev_live, "Z_prev": {n: z.clone() for n, z in zip(self.names, self.Z_prev)},
                        "loss_prev": self.loss_prev, "loss_now": self.loss_now, "k_taken": self.k_taken},
        }

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.s = [float(v) for v in state["s"]]
        self.s0, self.M, self.r = float(state["s0"]), float(state["M"]), float(state["r"])
        self.prev_loss = state["prev_loss"]
        for w, name in zip(self.W_prev, self.names):
            w.copy_(state["W_prev"][name])
        authors = state.get("authors")
        if authors is not None:
            self.W_prev_live, self.k_taken = bool(authors["W_prev_live"]), int(authors["k_taken"])
            self.loss_prev, self.loss_now = float(authors["loss_prev"]), float(authors["loss_now"])
            for z, name in zip(self.Z_prev, self.names):
                z.copy_(authors["Z_prev"][name])
