"""A table's config, expanded into experiments and the pipeline runs of each.

A table config (``classification/configs/<table>.yaml``) holds ``defaults`` shared by every
experiment and ``experiments: {name: settings}``; each experiment is ``defaults`` deep-merged
with its own settings, then ``--set`` overrides. An experiment runs every combination of
``methods x rates x seeds x sweep point``; ``sweeps`` (for the ablations) is a list of grids
over pruning hyperparameters, e.g. ``[{rho: [0.1, 0.01], s0: [0.01, 0.001]}]``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from core.config import apply_overrides, deep_merge, load_run_config
from core.errors import ConfigError
from core.pipeline import PruningRecipe

__all__ = ["CONFIG_DIR", "Experiment", "load_table", "expand_runs", "sweep_label"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
_PRUNING_KEYS = ("epochs", "retrain_epochs", "rho", "s0", "M", "r", "update_every", "eval_every", "amplify")


@dataclass
class Experiment:
    """One row group of a table: a model on a data set with its settings."""

    name: str
    settings: dict[str, Any]


def load_table(config: str | Path, profile: str, overrides: Iterable[str] = (), only: Iterable[str] | None = None) -> tuple[str, list[Experiment]]:
    """The table name and its experiments for ``profile``; ``only`` keeps the named experiments."""
    path = Path(config)
    if not path.suffix:
        path = CONFIG_DIR / f"{config}.yaml"
    data = load_run_config(path, profile)
    table = data.get("table", path.stem)
    label = data.get("profile_label", profile)  # e.g. "cpu" for a reduced real run
    experiments = data.get("experiments") or {}
    if not isinstance(experiments, Mapping) or not experiments:
        raise ConfigError(f"{path}: 'experiments' must map experiment names to settings")
    only = list(only or [])
    unknown = [n for n in only if n not in experiments]
    if unknown:
        raise ConfigError(f"{path} has no experiment {unknown}; choose from {sorted(experiments)}")
    result = []
    for name, own in experiments.items():
        if only and name not in only:
            continue
        settings = apply_overrides(deep_merge(data.get("defaults") or {}, own or {}), overrides)
        settings.update(experiment=name, table=table, profile=label)
        _check(path, name, settings)
        result.append(Experiment(name, settings))
    return table, result


def _check(path: Path, name: str, settings: Mapping[str, Any]) -> None:
    for key in ("model", "data", "optimizer", "pruning", "sparsity", "rates", "methods", "seeds"):
        if key not in settings:
            raise ConfigError(f"{path}: experiment '{name}' has no '{key}'; add it under defaults or the experiment")
    if "arch" not in settings["model"]:
        raise ConfigError(f"{path}: experiment '{name}' names no model.arch (resnet18, resnet50 or vgg16)")
    unknown = sorted(set(settings["pruning"]) - set(_PRUNING_KEYS))
    if unknown:
        raise ConfigError(f"{path}: experiment '{name}': unknown pruning key(s) {unknown}; allowed {list(_PRUNING_KEYS)}")
    for sweep in settings.get("sweeps") or []:
        bad = sorted(set(sweep) - set(_PRUNING_KEYS))
        if bad:
            raise ConfigError(f"{path}: experiment '{name}': sweeps over unknown key(s) {bad}; allowed {list(_PRUNING_KEYS)}")


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


def expand_runs(experiment: Experiment, methods: Iterable[str] | None = None, seeds: Iterable[int] | None = None) -> list[tuple[str, PruningRecipe]]:
    """``(run folder name, recipe)`` for every run of ``experiment``.

    A sweep point that equals the defaults still gets its own labelled run, so every table cell
    has a results file named after it.
    """
    s = experiment.settings
    methods = list(methods or s["methods"])
    seeds = list(seeds if seeds is not None else s["seeds"])
    runs: list[tuple[str, PruningRecipe]] = []
    for point in _sweep_points(s.get("sweeps")):
        pruning = {**s["pruning"], **point}
        for rate in s["rates"]:
            for method in methods:
                for seed in seeds:
                    sparsity = {**s["sparsity"], "target_rate": float(rate)}
                    recipe = PruningRecipe(method=method, sparsity=sparsity, seed=int(seed), profile=s["profile"],
                                           extra={"experiment": experiment.name, "table": s["table"], "sweep": point},
                                           **pruning)
                    label = f"{float(rate):g}x" + (f"_{sweep_label(point)}" if point else "")
                    runs.append((f"{method}_{label}_seed{seed}", recipe))
    return runs
