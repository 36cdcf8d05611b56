"""Per-layer budgets for a target compression rate.

Each layer keeps whole units (weights, or the filters / channels / columns of a structured
scheme), at least one, and the layers together keep as close to the wanted number of weights
as whole units allow: exactly that number for irregular pruning. Layers start at their share
of the budget, rounded down, and units are then added to (or taken from) the layers furthest
below (above) their share while that brings the total closer.
"""
from __future__ import annotations

import math
from typing import Sequence

__all__ = ["allocate_units"]


def allocate_units(units: Sequence[int], sizes: Sequence[int], kept: int) -> list[int]:
    """Units kept per layer, each in ``[1, units[i]]``, with ``sum(k_i * sizes[i])`` nearest ``kept``.

    ``units[i]`` is layer i's number of units and ``sizes[i]`` the weights per unit. The
    caller checks that ``kept`` lies between one unit per layer and everything.
    """
    total = sum(u * s for u, s in zip(units, sizes))
    share = [u * kept / total for u in units]  # ideal (fractional) units per layer
    counts = [min(u, max(1, math.floor(x))) for u, x in zip(units, share)]
    rest = kept - sum(k * s for k, s in zip(counts, sizes))
    while rest:
        if rest > 0:
            grow = [i for i, (k, u, s) in enumerate(zip(counts, units, sizes)) if k < u and s < 2 * rest]
            if not grow:
                break
            i = max(grow, key=lambda j: (share[j] - counts[j], -j))
            counts[i] += 1
            rest -= sizes[i]
        else:
            shrink = [i for i, (k, s) in enumerate(zip(counts, sizes)) if k > 1 and s < -2 * rest]
            if not shrink:
                break
            i = min(shrink, key=lambda j: (share[j] - counts[j], j))
            counts[i] -= 1
            rest += sizes[i]
    return counts
