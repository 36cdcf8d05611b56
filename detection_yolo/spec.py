"""What a stage trainer does beyond Ultralytics' own training, and how a user says it.

A pruning run is configured by a plain mapping of options, given either as the ``prune=`` keyword
of ``YOLO(...).train(trainer=PruneTrainer, prune={...})`` or to ``PruneTrainer.configured(...)``::

    {"method": "slr", "rate": 2.0}                      # the default layers (layers.py)
    {"method": "admm", "rate": 3.0, "rho": 0.1, "exclude": ["model.0.conv.weight"]}
    {"method": "slr", "prune_ratios": {"model.4.*.conv.weight": 0.8}, "update_every": 2, "eval_every": 2}

Besides the sparsity options, a method takes its own hyperparameters (the registry's, read from
its pruner's signature: SLR's rho, s0, M, r; ADMM's rho; ...) and the run-schedule keys
``update_every`` (Z and multipliers every n-th epoch) and ``eval_every`` (validate every n-th
pruning epoch and the last). :func:`prune_spec` checks the options and turns them into a
:class:`StageSpec`; the experiment pipeline builds the same spec from a recipe
(:meth:`core.harness.recipe.PruningRecipe.pruner_settings`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from core import SparsityConfig
from core.errors import ConfigError
from core.pruning.methods import MethodSpec, get_method, method_names
from core.pruning.pruner import DualPruner

from .layers import DEFAULT_EXCLUDE, DEFAULT_INCLUDE

__all__ = ["StageSpec", "SPARSITY_OPTIONS", "SCHEDULE_OPTIONS", "trainer_method", "prune_options", "prune_spec", "retrain_spec"]

SPARSITY_OPTIONS = ("method", "rate", "prune_ratios", "include", "exclude", "scheme")
SCHEDULE_OPTIONS = ("update_every", "eval_every")  # the pruning epochs are the trainer's own `epochs`


@dataclass
class StageSpec:
    """One stage's extra work (picklable: it travels to Ultralytics' DDP workers in the callbacks)."""

    stage: str = "dense"  # dense | prune | retrain
    method: str | None = None  # prune: slr | admm | any registered method
    sparsity: dict[str, Any] | None = None  # prune: the core SparsityConfig in dict form ({head} allowed)
    pruner_settings: dict[str, Any] = field(default_factory=dict)  # prune: core.build_pruner's settings (hyperparameters,
    #                                                                update_every; absent: the method's defaults)
    eval_every: int = 1  # prune: validate every n-th epoch (and the last)
    masks: str | None = None  # retrain: masks.pt written by hard-pruning (None: the loaded weights' zeros)
    threads: int = 0  # CPU threads to restore after Ultralytics sets its own (0: leave)
    max_batches: int | None = None  # --max-batches: every epoch and validation stops after this many batches (a check)

    def __post_init__(self) -> None:
        if self.stage not in ("dense", "prune", "retrain"):
            raise ConfigError(f"unknown stage '{self.stage}'; use dense, prune or retrain")
        if self.stage == "prune" and (self.method is None or self.sparsity is None):
            raise ConfigError("the prune stage needs a method (slr or admm) and a sparsity config")
        if self.stage == "prune":
            trainer_method(self.method)
        if int(self.eval_every) < 1:
            raise ConfigError(f"eval_every = {self.eval_every} must be a positive integer")


def _in_step(spec: MethodSpec) -> bool:
    factory = spec.factory  # the pruner class (a "module:name" registration is imported here)
    return isinstance(factory, type) and issubclass(factory, DualPruner)


def trainer_method(name: str) -> MethodSpec:
    """The registered method ``name``, if PruneTrainer can run it: a method whose pruner adds its
    penalty gradient inside Ultralytics' step (SLR, ADMM and their variants); one line otherwise."""
    spec = get_method(name)  # unknown methods: one line naming the registered ones
    if not _in_step(spec):
        usable = [m for m in method_names() if _in_step(get_method(m))]
        raise ConfigError(f"method '{spec.name}' cannot run inside Ultralytics' trainer (it adds no penalty gradient to the step"
                          f"{' and runs its own loop' if spec.owns_loop else ''}); use one of {', '.join(usable)}")
    return spec


def prune_options(method: str) -> tuple[str, ...]:
    """Every ``prune=`` option of ``method``: sparsity, its hyperparameters, the schedule keys."""
    return (*SPARSITY_OPTIONS, *get_method(method).hyperparameters, *SCHEDULE_OPTIONS)


def prune_spec(options: Mapping[str, Any], threads: int = 0) -> StageSpec:
    """The prune stage's spec from user options (see the module docstring); a bad option is a ConfigError."""
    if not isinstance(options, Mapping):
        raise ConfigError(f"prune options must be a mapping such as {{'method': 'slr', 'rate': 2.0}}, not {options!r}")
    method = str(options.get("method", "slr"))
    spec = trainer_method(method)
    allowed = prune_options(method)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown prune option(s) {unknown}; {method} takes {', '.join(allowed)}")
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
    settings: dict[str, Any] = {}
    for key, default in spec.hyperparameters.items():
        if key in options:
            settings[key] = _number(key, options[key]) if isinstance(default, (int, float)) and not isinstance(default, bool) else options[key]
    schedule = {key: _positive_int(key, options[key]) for key in SCHEDULE_OPTIONS if key in options}
    if "update_every" in schedule:
        settings["update_every"] = schedule["update_every"]
    return StageSpec("prune", method, sparsity, settings, eval_every=schedule.get("eval_every", 1), threads=int(threads))


def _number(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"prune option {key} = {value!r} must be a number") from None


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"prune option {key} = {value!r} must be a positive integer")
    return value


def retrain_spec(masks: str | None = None, threads: int = 0) -> StageSpec:
    """The masked retraining spec: masks from ``masks`` (a masks.pt), else the zeros of the loaded weights."""
    return StageSpec("retrain", masks=None if masks is None else str(masks), threads=int(threads))
