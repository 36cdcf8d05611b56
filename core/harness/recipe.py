"""One config schema for every task, and the recipes of its runs.

A run config (``<task>/configs/<name>.yaml``) has the same keys in the same places for every task::

    table: table1                  # optional: the name of the grid (default: the file's stem)
    model: {...}                   # the task's model section
    data: {...}                    # the task's data section (subdir under DATA_ROOT, sizes, ...)
    methods: [slr, admm]           # registered method names (core.pruning.methods)
    rates: [8.71]                  # target compression rates over the pruned layers
    seeds: [0]
    pruning: {epochs: 40, retrain_epochs: 5, update_every: 1, eval_every: 1, rho: 0.1, s0: 1.0e-4, M: 200, r: 0.1}
    sparsity: {scheme: irregular, include: [...], exclude: [...]}
    optimizer: {...}               # the task's optimizer and its schedule; retrain_optimizer: overrides for retraining
    dense: {checkpoint: null, epochs: 0, seed: 0, ...}   # the dense model: loaded, cached or trained here
    batch_size: 128
    device: auto                   # or --device; threads: torch CPU threads (or --threads)
    experiments:                   # optional: name -> settings merged over the ones above (runs go to <out>/<name>/)
      r18_cifar: {model: {arch: resnet18}, rates: [8.71]}
    profiles:                      # smoke and paper: settings (and experiments) merged over all of the above
      smoke: {...}

``pruning`` holds the run schedule (:data:`SCHEDULE_DEFAULTS`) and the hyperparameters of the
methods the config runs; each method declares its own, with defaults, in the registry, and a key
no listed method takes is an error. ``sweeps`` (a list of grids over pruning keys) adds a run per
point, for ablations.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ConfigError
from ..pruning.methods import get_method
from ..pruning.pruner import as_sparsity_config
from .config import apply_overrides, deep_merge, load_run_config
from .results import jsonable

__all__ = ["SCHEDULE_DEFAULTS", "REQUIRED_SETTINGS", "PruningRecipe", "same_recipe", "Experiment", "load_experiments",
           "expand_runs", "sweep_label", "run_name"]

# the run schedule every recipe has, whatever the method
SCHEDULE_DEFAULTS: dict[str, int] = {"epochs": 40, "retrain_epochs": 5, "update_every": 1, "eval_every": 1}
# settings every experiment has (at the top level or its own)
REQUIRED_SETTINGS = ("model", "data", "methods", "rates", "seeds", "pruning", "sparsity", "optimizer", "dense")
_RESERVED = ("table", "profile_label", "experiments", "profiles")
# recipes of results files written before each method declared its hyperparameters held these for every method
_LEGACY_SLR_KEYS = ("rho", "s0", "M", "r")


@dataclass
class PruningRecipe:
    """Method, sparsity, schedule and hyperparameters of one run.

    ``hyper`` holds the method's hyperparameters: the registry's defaults (read from the
    method's own signature) updated by the given ones; a key the method does not take is an error.
    ``eval_every``: evaluate every n-th pruning epoch (and the last); retraining evaluates every epoch.
    """

    method: str = "slr"
    sparsity: Any = None  # SparsityConfig, its dict form, or a YAML path
    epochs: int = SCHEDULE_DEFAULTS["epochs"]
    retrain_epochs: int = SCHEDULE_DEFAULTS["retrain_epochs"]
    update_every: int = SCHEDULE_DEFAULTS["update_every"]
    eval_every: int = SCHEDULE_DEFAULTS["eval_every"]
    seed: int = 0
    profile: str = "smoke"
    hyper: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = get_method(self.method)  # a clear error naming the registered methods
        declared = spec.hyperparameters
        unknown = sorted(set(self.hyper) - set(declared))
        if unknown:
            raise ConfigError(f"method '{self.method}' takes no {', '.join(unknown)}; its hyperparameters are {', '.join(declared) or 'none'}")
        self.hyper = {**declared, **self.hyper}
        if self.sparsity is None:
            raise ConfigError("the recipe needs a sparsity config (prune_ratios or target_rate)")
        self.sparsity = as_sparsity_config(self.sparsity)
        if self.epochs < 0 or self.retrain_epochs < 0:
            raise ConfigError("epochs and retrain_epochs must be >= 0")
        if int(self.eval_every) < 1:
            raise ConfigError(f"eval_every = {self.eval_every} must be a positive integer")

    @classmethod
    def build(cls, method: str, sparsity: Any, pruning: Mapping[str, Any] | None = None, **fields: Any) -> "PruningRecipe":
        """The recipe of ``method`` from a config's ``pruning`` section: schedule keys go to the
        schedule, the method's own hyperparameters to ``hyper``, and the others (hyperparameters of
        the other methods of the same config) are left out."""
        pruning = dict(pruning or {})
        declared = get_method(method).hyperparameters
        schedule = {k: pruning[k] for k in SCHEDULE_DEFAULTS if k in pruning}
        hyper = {k: v for k, v in pruning.items() if k in declared}
        return cls(method=method, sparsity=sparsity, hyper=hyper, **schedule, **fields)

    def pruner_settings(self) -> dict[str, Any]:
        """Hyperparameters and schedule keys for :func:`core.build_pruner` (it keeps the ones the method takes)."""
        return {**self.hyper, "epochs": self.epochs, "update_every": self.update_every}

    def as_dict(self) -> dict[str, Any]:
        """The recipe as results files and checkpoints record it: flat, hyperparameters beside the
        schedule; a hyperparameter left at ``None`` (the method's default) is not recorded."""
        return {"method": self.method, "sparsity": self.sparsity.to_dict(), "epochs": self.epochs,
                "retrain_epochs": self.retrain_epochs, **{k: v for k, v in self.hyper.items() if v is not None},
                "update_every": self.update_every, "seed": self.seed, "profile": self.profile,
                "eval_every": self.eval_every, "extra": dict(self.extra)}


def same_recipe(recorded: Mapping[str, Any] | None, recipe: PruningRecipe) -> bool:
    """Whether a recorded recipe (a results file's or a checkpoint's) is ``recipe``, compared in
    JSON form. Files written before methods declared their hyperparameters carry SLR's rho, s0, M
    and r for every method; those the method does not take are ignored."""
    if recorded is None:
        return False
    ours = jsonable(recipe.as_dict())
    recorded = jsonable(dict(recorded))
    if recorded == ours:
        return True
    declared = get_method(recipe.method).hyperparameters
    stale = [k for k in _LEGACY_SLR_KEYS if k not in declared]
    return {k: v for k, v in recorded.items() if k not in stale} == ours


@dataclass
class Experiment:
    """One group of runs of a config: its name (``None`` for a config without ``experiments``),
    the grid's name and its settings."""

    name: str | None
    table: str
    settings: dict[str, Any]


def load_experiments(path: str | Path, profile: str, overrides: Iterable[str] = (), only: Iterable[str] | None = None) -> list[Experiment]:
    """The experiments of the config at ``path`` for ``profile``, ``--set`` overrides applied to
    each; ``only`` keeps the named experiments. Every experiment has :data:`REQUIRED_SETTINGS`."""
    path = Path(path)
    data = load_run_config(path, profile)
    table = str(data.get("table", path.stem))
    label = data.get("profile_label", profile)  # e.g. "cpu" for a reduced real run
    shared = {k: v for k, v in data.items() if k not in _RESERVED}
    experiments = data.get("experiments")
    if experiments is not None and (not isinstance(experiments, Mapping) or not experiments):
        raise ConfigError(f"{path}: 'experiments' must map experiment names to settings")
    named: Mapping[str | None, Any] = experiments or {None: {}}
    only = list(only or [])
    unknown = [n for n in only if n not in named]
    if unknown:
        raise ConfigError(f"{path} has no experiment {unknown}; choose from {sorted(n for n in named if n)}")
    result = []
    for name, own in named.items():
        if only and name not in only:
            continue
        settings = apply_overrides(deep_merge(shared, own or {}), overrides)
        settings.update(table=table, profile=label)
        if name is not None:
            settings["experiment"] = name
        _check(path, name, settings)
        result.append(Experiment(name, table, settings))
    return result


def _check(path: Path, name: str | None, settings: Mapping[str, Any]) -> None:
    where = f"experiment '{name}'" if name else "the config"
    missing = [k for k in REQUIRED_SETTINGS if k not in settings]
    if missing:
        raise ConfigError(f"{path}: {where} has no {', '.join(repr(k) for k in missing)}; add {'it' if len(missing) == 1 else 'them'} "
                          f"{'under the config or the experiment' if name else 'to the config'}")
    methods = settings["methods"]
    if not isinstance(methods, list) or not methods:
        raise ConfigError(f"{path}: {where}: methods must be a list of method names, e.g. [slr, admm]")
    allowed = set(SCHEDULE_DEFAULTS).union(*(get_method(m).hyperparameters for m in methods))
    for keys, what in [(settings["pruning"] or {}, "pruning key(s)"), *[(sweep, "sweep key(s)") for sweep in settings.get("sweeps") or []]]:
        bad = sorted(set(keys) - allowed)
        if bad:
            raise ConfigError(f"{path}: {where}: unknown {what} {bad}; the schedule keys are {list(SCHEDULE_DEFAULTS)} and the "
                              f"hyperparameters of {', '.join(methods)} are {sorted(allowed - set(SCHEDULE_DEFAULTS))}")


def sweep_label(point: Mapping[str, Any]) -> str:
    """``rho-0.1_s0-0.0001`` for a sweep point."""
    return "_".join(f"{k}-{v:g}" if isinstance(v, (int, float)) else f"{k}-{v}" for k, v in point.items())


def _sweep_points(sweeps: list[Mapping[str, list]] | None) -> list[dict[str, Any]]:
    if not sweeps:
        return [{}]
    points: list[dict[str, Any]] = []
    for grid in sweeps:
        keys = list(grid)
        for values in itertools.product(*(grid[k] if isinstance(grid[k], list) else [grid[k]] for k in keys)):
            point = dict(zip(keys, values))
            if point not in points:
                points.append(point)
    return points


def run_name(recipe: PruningRecipe, label: str | None = None) -> str:
    """``<method>_<label>_seed<seed>``; label defaults to the target rate (``8.71x``)."""
    if label is None:
        rate = recipe.sparsity.target_rate
        label = f"{rate:g}x" if rate is not None else "ratios"
    return f"{recipe.method}_{label}_seed{recipe.seed}"


def expand_runs(experiment: Experiment, methods: Iterable[str] | None = None, seeds: Iterable[int] | None = None) -> list[tuple[str, PruningRecipe]]:
    """``(run folder name, recipe)`` for every sweep point x rate x method x seed of ``experiment``
    (``methods`` and ``seeds`` replace the config's). A sweep point that equals the defaults
    still gets its own labelled run, so every table cell has a results file named after it."""
    s = experiment.settings
    methods = list(methods or s["methods"])
    seeds = list(seeds if seeds is not None else s["seeds"])
    runs: list[tuple[str, PruningRecipe]] = []
    for point in _sweep_points(s.get("sweeps")):
        pruning = {**s["pruning"], **point}
        extra = {} if experiment.name is None else {"experiment": experiment.name, "table": experiment.table, "sweep": point}
        for rate in s["rates"]:
            for method in methods:
                for seed in seeds:
                    sparsity = {**s["sparsity"], "target_rate": float(rate)}
                    recipe = PruningRecipe.build(method, sparsity, pruning, seed=int(seed), profile=s["profile"], extra=dict(extra))
                    label = f"{float(rate):g}x" + (f"_{sweep_label(point)}" if point else "")
                    runs.append((run_name(recipe, label), recipe))
    return runs
