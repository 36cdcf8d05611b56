"""Euclidean projections onto the sparsity sets ``S_n`` of the paper (eq. 10).

Every projection is returned as a boolean keep-mask of the tensor's shape; the projected tensor
is ``w * mask``. Masks are computed in pure torch on the tensor's own device and never keep
more than the budget, ties included: among equal scores the lowest flat index wins, so the
result is deterministic.

Schemes
-------
``irregular``  keep the ``k`` entries of largest magnitude (the paper's pruning).
``filter``     keep whole output filters (dim 0) with the largest L2 norm.
``channel``    keep whole input channels (dim 1) with the largest L2 norm.
``column``     keep whole columns of the ``(out, in*kh*kw)`` matrix with the largest L2 norm.
``N:M``        in every group of ``M`` consecutive *input channels*, keep the ``N`` of largest
               magnitude: along dim 1 of a Linear weight ``(out, in)``, and at each
               ``(out, kh, kw)`` of a convolution weight ``(out, in, kh, kw)``. That is the
               layout of torch's semi-structured sparsity (``to_sparse_semi_structured``) for
               the ``(out, kh * kw * in)`` matrix of the channels-last weight
               ``w.permute(0, 2, 3, 1)``, the matrix an implicit-GEMM convolution multiplies;
               the input channels must be a multiple of ``M``.

For the group schemes the Euclidean projection onto "at most k groups non-zero" keeps the groups
of largest squared norm, which is what the masks below select.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["Scheme", "topk_mask", "keep_count", "scheme_units", "sparsity_mask", "project"]

_GROUP_SCHEMES = ("filter", "channel", "column")
_NM_PATTERN = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Scheme:
    """A sparsity pattern: ``irregular``, ``filter``, ``channel``, ``column`` or ``N:M``."""

    kind: str
    n: int = 0
    m: int = 0

    @classmethod
    def parse(cls, text: "str | Scheme") -> "Scheme":
        """A scheme from its name (``"filter"``, ``"2:4"``, ...); an unknown name is a :class:`ConfigError`."""
        if isinstance(text, Scheme):
            return text
        name = str(text).strip().lower()
        if name == "irregular" or name in _GROUP_SCHEMES:
            return cls(name)
        match = _NM_PATTERN.match(name)
        if match:
            n, m = int(match.group(1)), int(match.group(2))
            if not 0 < n < m:
                raise ConfigError(f"N:M scheme '{text}' needs 0 < N < M, e.g. '2:4'")
            return cls("nm", n, m)
        raise ConfigError(
            f"unknown sparsity scheme '{text}'; use one of irregular, filter, channel, column or N:M such as 2:4"
        )

    @property
    def nm_ratio(self) -> float:
        """The pruning ratio an N:M scheme implies."""
        return 1.0 - self.n / self.m

    def __str__(self) -> str:
        return f"{self.n}:{self.m}" if self.kind == "nm" else self.kind


def keep_count(units: int, ratio: float) -> int:
    """Number of units (weights or groups) a ratio keeps: ``units - round(ratio * units)``."""
    return units - int(round(ratio * units))


def scheme_units(shape: "tuple[int, ...] | torch.Size", scheme: "Scheme | str") -> tuple[int, int]:
    """``(units, size)``: how many units a scheme keeps or prunes in a tensor, and weights per unit.

    Irregular: every weight is a unit; filter / channel / column: the groups; N:M: the groups
    of ``M`` input channels (of which ``N`` weights are kept).
    """
    scheme = Scheme.parse(scheme)
    numel = 1
    for d in shape:
        numel *= int(d)
    if scheme.kind == "irregular":
        return numel, 1
    if scheme.kind == "nm":
        return numel // scheme.m, scheme.m
    groups = {"filter": shape[0], "channel": shape[1], "column": numel // shape[0]}[scheme.kind]
    return int(groups), numel // int(groups)


_SAMPLE = 16384


def topk_mask(scores: Tensor, k: int) -> Tensor:
    """Boolean mask selecting exactly ``k`` entries of ``scores`` with the largest values.

    Ties are filled in order of increasing flat index, so the mask is deterministic.
    """
    flat = scores.reshape(-1)
    total = flat.numel()
    if k >= total:
        return torch.ones_like(scores, dtype=torch.bool)
    if k <= 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    keep = None
    if flat.device.type == "cpu" and total > 65536:
        keep = _bracketed_topk_mask(flat, k)
    if keep is None:
        keep = _threshold_topk_mask(flat, k)
    return keep.reshape(scores.shape)


def _threshold_topk_mask(flat: Tensor, k: int) -> Tensor:
    """Exact top-k by the k-th largest value; ties filled by a running count. No host sync."""
    threshold = torch.kthvalue(flat, flat.numel() - k + 1).values
    above = flat > threshold
    ties = flat == threshold
    missing = k - above.sum()
    return above | (ties & (torch.cumsum(ties, dim=0) <= missing))


def _bracketed_topk_mask(flat: Tensor, k: int) -> Tensor | None:
    """Exact top-k on the CPU without a full selection.

    ``kthvalue`` over millions of entries is slow on the CPU, so a fixed-seed sample brackets
    the k-th largest value in ``[low, high]``; everything above ``high`` is kept, and only the
    few entries inside the bracket are sorted to fill the rest. Returns ``None`` when the
    bracket misses (rarely), for the caller to use the full selection.
    """
    total = flat.numel()
    size = min(_SAMPLE, max(2048, total // 64))  # the bracket holds about 8 sigma / sqrt(size) of the entries
    generator = torch.Generator().manual_seed(total)
    sample = flat[torch.randint(total, (size,), generator=generator)]
    position = (total - k) / total * size
    margin = 4.0 * (size * k / total * (1.0 - k / total)) ** 0.5 + 8.0  # 4 sigma of the sample count
    low = torch.kthvalue(sample, max(int(position - margin), 1)).values
    high = torch.kthvalue(sample, min(int(position + margin), size)).values
    keep = flat > high
    missing = k - int(torch.count_nonzero(keep))
    band_index = torch.nonzero((flat >= low) ^ keep).squeeze(1)  # low <= value <= high
    if not 0 < missing <= band_index.numel():
        return None
    keep[band_index[_threshold_topk_mask(flat[band_index], missing)]] = True
    return keep


def _group_scores(w: Tensor, kind: str) -> Tensor:
    """Squared L2 norm of each group (same order as the norm itself)."""
    if w.dim() < 2:
        raise ConfigError(f"'{kind}' pruning needs a weight with at least 2 dimensions, got shape {tuple(w.shape)}")
    squares = w.detach().float().square()
    if kind == "filter":
        return squares.reshape(w.shape[0], -1).sum(dim=1)
    if kind == "channel":
        return squares.transpose(0, 1).reshape(w.shape[1], -1).sum(dim=1)
    return squares.reshape(w.shape[0], -1).sum(dim=0)  # column


def _expand_group_mask(group_keep: Tensor, w: Tensor, kind: str) -> Tensor:
    if kind == "filter":
        return group_keep.view(-1, *([1] * (w.dim() - 1))).expand_as(w).clone()
    if kind == "channel":
        return group_keep.view(1, -1, *([1] * (w.dim() - 2))).expand_as(w).clone()
    return group_keep.view(1, -1).expand(w.shape[0], -1).reshape(w.shape).clone()  # column


def _nm_mask(w: Tensor, n: int, m: int) -> Tensor:
    """N of every M consecutive input channels (dim 1), at each output and kernel position."""
    order = (0, *range(2, w.dim()), 1) if w.dim() > 1 else (0,)  # channels last: (out, *kernel, in)
    last = w.detach().permute(order) if w.dim() > 1 else w.detach().reshape(1, -1)
    if last.shape[-1] % m:
        raise ConfigError(
            f"N:M pruning with M={m} needs the input channels (dim 1) to be a multiple of {m}; "
            f"weight shape {tuple(w.shape)} has {last.shape[-1]}"
        )
    groups = last.abs().reshape(-1, m)
    chosen = torch.sort(groups, dim=-1, descending=True, stable=True).indices[:, :n]
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, chosen, True).reshape(last.shape)
    if w.dim() == 1:
        return keep.reshape(w.shape)
    inverse = [order.index(d) for d in range(w.dim())]
    return keep.permute(inverse).contiguous()


def sparsity_mask(w: Tensor, scheme: "Scheme | str", ratio: float) -> Tensor:
    """Keep-mask of the Euclidean projection of ``w`` onto the set pruned by ``ratio`` under ``scheme``.

    For ``N:M`` the ratio is implied by the scheme and ``ratio`` is ignored.
    """
    scheme = Scheme.parse(scheme)
    if scheme.kind == "irregular":
        return topk_mask(w.detach().abs(), keep_count(w.numel(), ratio))
    if scheme.kind == "nm":
        return _nm_mask(w, scheme.n, scheme.m)
    scores = _group_scores(w, scheme.kind)
    group_keep = topk_mask(scores, keep_count(scores.numel(), ratio))
    return _expand_group_mask(group_keep, w, scheme.kind)


def project(w: Tensor, scheme: "Scheme | str", ratio: float) -> Tensor:
    """``Proj_S(w)``: ``w`` with everything outside the keep-mask set to zero."""
    return w * sparsity_mask(w, scheme, ratio).to(w.dtype)  # a float factor multiplies faster than a bool
