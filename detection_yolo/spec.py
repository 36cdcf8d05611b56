"""What a stage trainer does beyond Ultralytics' own training, and how a user says it.

A pruning run is configured by a plain mapping of options, given either as the ``prune=`` keyword
of ``YOLO(...).train(trainer=PruneTrainer, prune={...})`` or to ``PruneTrainer.configured(...)``::

    {"method": "slr", "rate": 2.0}                      # the default layers (layers.py)
    {"method": "admm", "rate": 3.0, "rho": 0.1, "exclude": ["model.0.conv.weight"]}
    {"method": "slr", "prune_ratios": {"model.4.*.conv.weight": 0.8}}

:func:`prune_spec` checks the options and turns them into a :class:`StageSpec`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from core import SparsityConfig
from core.errors import ConfigError
from core.pruning.methods import get_method

from .layers import DEFAULT_EXCLUDE, DEFAULT_INCLUDE

__all__ = ["StageSpec", "PRUNE_OPTIONS", "HYPER_OPTIONS", "prune_spec", "retrain_spec"]

HYPER_OPTIONS = ("rho", "s0", "M", "r")
PRUNE_OPTIONS = ("method", "rate", "prune_ratios", "include", "exclude", "scheme", *HYPER_OPTIONS)


@dataclass
class StageSpec:
    """One stage's extra work (picklable: it travels to Ultralytics' DDP workers in the callbacks)."""

    stage: str = "dense"  # dense | prune | retrain
    method: str | None = None  # prune: slr | admm | any registered method
    sparsity: dict[str, Any] | None = None  # prune: the core SparsityConfig in dict form ({head} allowed)
    hyper: dict[str, float] = field(default_factory=dict)  # prune: rho, s0, M, r (absent: the method's defaults)
    masks: str | None = None  # retrain: masks.pt written by hard-pruning (None: the loaded weights' zeros)
    threads: int = 0  # CPU threads to restore after Ultralytics sets its own (0: leave)

    def __post_init__(self) -> None:
        if self.stage not in ("dense", "prune", "retrain"):
            raise ConfigError(f"unknown stage '{self.stage}'; use dense, prune or retrain")
        if self.stage == "prune" and (self.method is None or self.sparsity is None):
            raise ConfigError("the prune stage needs a method (slr or admm) and a sparsity config")

    def __call__(self, trainer) -> None:
        """No-op: the spec sits in the callbacks only to travel with them."""


def prune_spec(options: Mapping[str, Any], threads: int = 0) -> StageSpec:
    """The prune stage's spec from user options (see the module docstring); a bad option is a ConfigError."""
    if not isinstance(options, Mapping):
        raise ConfigError(f"prune options must be a mapping such as {{'method': 'slr', 'rate': 2.0}}, not {options!r}")
    unknown = sorted(set(options) - set(PRUNE_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown prune option(s) {unknown}; use {', '.join(PRUNE_OPTIONS)}")
    method = str(options.get("method", "slr"))
    get_method(method)  # unknown methods: one line naming the registered ones
    scheme = options.get("scheme", "irregular")
    if options.get("prune_ratios"):
        if "rate" in options:
            raise ConfigError("give either rate (one ratio solved over the layers) or prune_ratios (per layer), not both")
        sparsity = {"prune_ratios": dict(options["prune_ratios"]), "scheme": scheme}
    elif options.get("rate") is not None:
        sparsity = {"target_rate": options["rate"], "scheme": scheme,
                    "include": list(options.get("include") or DEFAULT_INCLUDE),
                    "exclude": list(options.get("exclude") if options.get("exclude") is not None else DEFAULT_EXCLUDE)}
    else:
        raise ConfigError("prune options need a target compression rate, e.g. {'method': 'slr', 'rate': 2.0}")
    sparsity = SparsityConfig.from_dict(sparsity, source="prune options").to_dict()  # checked now, not mid-run
    hyper = {}
    for key in HYPER_OPTIONS:
        if key in options:
            try:
                hyper[key] = float(options[key])
            except (TypeError, ValueError):
                raise ConfigError(f"prune option {key} = {options[key]!r} must be a number") from None
    return StageSpec("prune", method, sparsity, hyper, threads=int(threads))


def retrain_spec(masks: str | None = None, threads: int = 0) -> StageSpec:
    """The masked retraining spec: masks from ``masks`` (a masks.pt), else the zeros of the loaded weights."""
    return StageSpec("retrain", masks=None if masks is None else str(masks), threads=int(threads))
