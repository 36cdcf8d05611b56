"""What the authors' public code computes, where it differs from the paper's equations.

The reference is GitHub ``Zhoushanglin100/SLR-ADMM-cifar10`` at commit 8c1de3e
(``slr_pruning/slr/admm.py``, ``slr_pruning/main.py``, ``slr_pruning/run.sh``); docs/fidelity.md
maps every rule to its lines there. Nothing here is copied from it: the rules are recomputed
explicitly, with no autograd graph kept across steps, so the per-step cost is the paper's.

* **Gradient amplification.** The authors build the duals from the live weight tensor
  (ADMM: ``U = W - Z + U``; SLR: ``Lambda = s (W - Z) + Lambda``, ``U = Lambda / rho``) and add
  ``rho/2 ||W - Z + U||^2`` to the loss, so autograd also differentiates through U. After the
  dual updates so far the penalty gradient is ``gain * rho (W - Z + U)`` with
  ``gain = 1 + n`` (ADMM, n updates) or ``gain = 1 + (sum of the s used) / rho`` (SLR).
  :class:`~core.pruner.DualPruner` applies ``gain`` when ``amplify`` is on.
* **Projection and hard-pruning by percentile.** ``numpy.percentile(|W|, 100 ratio)`` (linear
  interpolation), then every entry below it is zeroed (:func:`percentile_project`).
* **SLR's schedule and state** (:func:`authors_slr_update`): two multiplier updates per call,
  one against the old Z and one against the new; W^{k-1} is the live tensor; W^{k-1} and Z^{k-1}
  start at zero and the previous loss at 0, so the first update is forced; one scalar stepsize
  from norms summed over the layers; k advances on every accepted update.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..errors import ConfigError
from .pruner import squared_norms_and_inner

if TYPE_CHECKING:
    from .slr import SLR

__all__ = ["VARIANTS", "check_variant", "percentile_threshold", "percentile_project", "authors_slr_update"]

VARIANTS = ("paper", "authors")


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ConfigError(f"variant '{variant}' is not one of {', '.join(VARIANTS)}")
    return variant


def percentile_threshold(magnitudes: Tensor, ratio: float) -> Tensor:
    """``numpy.percentile(magnitudes, 100 * ratio)`` with its default linear interpolation."""
    values = magnitudes.flatten()
    position = ratio * (values.numel() - 1)
    lower = math.floor(position)
    low = torch.kthvalue(values, lower + 1).values
    if lower + 1 >= values.numel():
        return low
    high = torch.kthvalue(values, lower + 2).values
    return low + (position - lower) * (high - low)


@torch.no_grad()
def percentile_project(tensor: Tensor, ratio: float) -> Tensor:
    """The authors' irregular projection: zero every entry whose magnitude is below the
    ``ratio`` percentile of the magnitudes; entries equal to it stay."""
    magnitudes = tensor.abs()
    return tensor * (magnitudes >= percentile_threshold(magnitudes, ratio))


def _summed_norms(diffs: list[Tensor]) -> float:
    """Sum over layers of ``||D_n||`` (the authors sum per-layer norms, not squares)."""
    return float(torch.stack([torch.linalg.vector_norm(d.float()) for d in diffs]).sum())


def _lagrangian(loss: float, diffs: list[Tensor], duals: list[Tensor], rho: float) -> float:
    """``loss + sum_n rho/2 ||D_n + Lambda_n / rho||^2`` less ``||Lambda_n||^2 / (2 rho)``, which
    both sides of each of the authors' comparisons share."""
    sq, inner = squared_norms_and_inner(diffs, duals)
    return loss + sum(inner) + rho / 2 * sum(sq)


@torch.no_grad()
def authors_slr_update(pruner: "SLR", loss: float | None) -> dict[str, Any]:
    """One call of the authors' SLR update (their ``z_u_update``, run at the first batch of each
    epoch from the second on, i.e. after each of our epochs).

    Phase 1 compares (W, Z^{k-1}) with (W^{k-1}, Z^{k-1}) and may move Lambda against the old Z;
    phase 2 projects a new Z = Proj(W + Lambda / rho), compares (W, Z) with (W, Z^{k-1}) and may
    move Lambda again. An update is taken when its condition holds or while k == 1.
    """
    from .slr import slr_alpha

    p, rho = pruner, pruner.rho
    p.loss_prev, p.loss_now = p.loss_now, (0.0 if loss is None else float(loss))  # main.py: ce_prev = ce; ce = epoch mean
    W = [w.detach() for w in p.params]
    records: list[dict[str, Any]] = []

    def take(diff_new: list[Tensor], diff_prev: list[Tensor], z_new: list[Tensor]) -> bool:
        """The condition, then (if taken) stepsize, multipliers, gain and the 'previous' point."""
        mixed, mixed_prev = _lagrangian(p.loss_now, diff_new, p.dual, rho), _lagrangian(p.loss_prev, diff_prev, p.dual, rho)
        condition = mixed < mixed_prev
        forced = p.k_taken == 1
        alpha = slr_alpha(p.k_taken, p.M, p.r)  # eq. (14) at the current k
        if condition or forced:
            n_prev, n_new = _summed_norms(diff_prev), _summed_norms(diff_new)
            p.k_taken += 1
            if n_prev != 0 and n_new != 0:
                p.s = [alpha * p.s[0] * n_prev / n_new] * len(p.s)  # one scalar stepsize
            torch._foreach_add_(p.dual, diff_new, alpha=p.s[0])  # Lambda += s (W - Z)
            p.gain = [g + p.s[0] / rho for g in p.gain]  # autograd through Lambda = s W + ...
            p.W_prev_live = True
            p.Z_prev = z_new
        records.append({"mixed_loss": mixed, "mixed_loss_prev": mixed_prev, "condition": condition, "forced": forced, "alpha": alpha})
        return condition or forced

    W_prev = W if p.W_prev_live else [torch.zeros_like(w) for w in W]
    taken_first = take(torch._foreach_sub(W, p.Z_prev), torch._foreach_sub(W_prev, p.Z_prev), p.Z)  # Lagrangian1
    Z = p._projected(p.dual, 1.0 / rho)  # Z = Proj(W + U)
    gap = torch._foreach_sub(W, Z)
    taken_second = take(gap, torch._foreach_sub(W, p.Z_prev), Z)  # Lagrangian2
    p.Z = Z
    first, second = records
    sq = squared_norms_and_inner(gap, gap)[0]
    return {
        "k": p.k,
        "k_taken": p.k_taken,
        "loss": loss,
        "mixed_loss": second["mixed_loss"],
        "mixed_loss_prev": second["mixed_loss_prev"],
        "condition": second["condition"],  # the check with the new Z, as in the paper's Algorithm 1
        "condition_first": first["condition"],
        "accepted": taken_first or taken_second,
        "accepted_first": taken_first,
        "accepted_second": taken_second,
        "alpha": second["alpha"],
        "s": p._layer_record(p.s),
        "gain": p.gain[0],
        "violation": sum(sq) ** 0.5,
        "violation_per_layer": p._layer_record([v**0.5 for v in sq]),
    }
