"""Which layers of an Ultralytics detection model are pruned by default.

Parameter names of an Ultralytics model are ``model.<index>.<path>``, one index per entry of
its YAML (backbone, then head); the detection head (``Detect``) is the last entry. The default
prunes the convolution of every ``Conv`` block (``*.conv.weight``: backbone, neck and their
nested blocks such as C2f, C3k2 or PSA), and keeps dense the first convolution, which sees the
raw image, and the whole detection head. Patterns may name the head's index as ``{head}``; it is
filled in from the model, so one config fits YOLOv3, YOLOv8 and YOLO11 alike.
"""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

__all__ = ["DEFAULT_INCLUDE", "DEFAULT_EXCLUDE", "HEAD", "head_index", "expand_patterns", "default_sparsity"]

DEFAULT_INCLUDE = ("model.*.conv.weight",)
DEFAULT_EXCLUDE = ("model.0.conv.weight", "model.{head}.*")
HEAD = "{head}"


def head_index(model: nn.Module) -> int:
    """Index of the detection head (the last entry of the model's ``model`` sequence)."""
    layers = getattr(model, "model", None)
    if not isinstance(layers, nn.Sequential) or len(layers) == 0:
        raise TypeError(f"{type(model).__name__} is not an Ultralytics detection model (no 'model' sequence)")
    return int(getattr(layers[-1], "i", len(layers) - 1))


def expand_patterns(sparsity: Mapping[str, Any], model: nn.Module) -> dict[str, Any]:
    """``sparsity`` with ``{head}`` in its include/exclude patterns and ratio keys replaced by the head's index."""
    if not any(HEAD in str(p) for key in ("include", "exclude", "prune_ratios") for p in (sparsity.get(key) or ())):
        return dict(sparsity)
    head = str(head_index(model))
    out = dict(sparsity)
    for key in ("include", "exclude"):
        if out.get(key):
            out[key] = [str(p).replace(HEAD, head) for p in out[key]]
    if out.get("prune_ratios"):
        out["prune_ratios"] = {str(k).replace(HEAD, head): v for k, v in out["prune_ratios"].items()}
    return out


def default_sparsity(rate: float, scheme: str = "irregular") -> dict[str, Any]:
    """A sparsity config (core's dict form) for ``rate`` over the default layers."""
    return {"target_rate": float(rate), "scheme": scheme, "include": list(DEFAULT_INCLUDE), "exclude": list(DEFAULT_EXCLUDE)}
