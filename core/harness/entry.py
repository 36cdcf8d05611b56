"""The one driver of the task entry points (``python -m <task>``).

A task's ``__main__`` describes itself with a :class:`TaskEntry` and calls :func:`main`; the
driver does the rest the same way for every task: the config (one schema, profiles, ``--set``),
threads, the device, the data root, the grid of runs with its dense-model cache, the report.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from ..pruning.methods import method_names, unavailable_reason
from ..pruning.ranks import is_main
from . import distributed
from .cli import ArgumentParser, add_common_args, dataset_dir, methods_from_arg, resolve_data_root, set_threads
from .config import settings_digest
from .device import resolve_device
from .grid import run_grid
from .recipe import Experiment, PruningRecipe, expand_runs, load_experiments
from .results import format_summary
from .task import PipelineTask

__all__ = ["TaskEntry", "main", "data_path"]


class TaskEntry:
    """What a task folder tells the driver; subclasses set the names and implement the hooks."""

    name: str  # the task folder, e.g. "classification"
    description: str = ""
    config_dir: Path
    default_config: str  # a config name in config_dir
    data_what: str = "the data set"  # how an error about a missing data root names it

    def needs_data_root(self, settings: dict[str, Any]) -> bool:
        """Whether ``settings`` read a real data set (False for generated or bundled data)."""
        return True

    def load_data(self, settings: dict[str, Any], root: Path | None, out: Path) -> Any:
        """The data of an experiment (``root``: its data set's folder, None for generated data);
        experiments with the same data settings share it."""
        raise NotImplementedError

    def make_task(self, settings: dict[str, Any], data: Any, device: Any, progress: bool) -> PipelineTask:
        raise NotImplementedError

    def run_experiment(self, experiment: Experiment, runs: list[tuple[str, PruningRecipe]], out: Path, data: Any,
                       device: Any, args: argparse.Namespace, dense_dir: Path) -> list[dict[str, Any]]:
        """Run ``runs`` into ``out``: core's pipeline (core.harness.grid) on :meth:`make_task`'s
        task. A task whose upstream code owns the training loop (Ultralytics) runs its own stages."""
        return run_grid(lambda recipe: self.task_for_run(experiment.settings, data, device, args), runs, out,
                        resume=args.resume, progress=not args.no_progress, dense_dir=dense_dir)

    def task_for_run(self, settings: dict[str, Any], data: Any, device: Any, args: argparse.Namespace) -> PipelineTask:
        """:meth:`make_task` with the command line's ``--max-batches`` and ``--amp``."""
        task = self.make_task(settings, data, device, not args.no_progress)
        task.max_batches, task.amp = args.max_batches, args.amp
        return task

    def report(self, experiment: Experiment, runs: list[tuple[str, PruningRecipe]], results: list[dict[str, Any]]) -> None:
        """Print the grid's numbers (rank 0 only)."""
        print(format_summary(results))


def data_path(settings: dict[str, Any], root: Path | None) -> Path | None:
    """``data.root`` when set, else the data set's ``data.subdir`` under the data root (or the root itself)."""
    data = settings.get("data") or {}
    if data.get("root"):
        return Path(data["root"])
    if root is None:
        return None
    return dataset_dir(root, data["subdir"]) if data.get("subdir") else root


def parse_args(entry: TaskEntry, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog=f"python -m {entry.name}", description=entry.description,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", "--table", dest="config", default=entry.default_config,
                        help=f"a config name in {entry.name}/configs ({entry.default_config}, ...) or a YAML path")
    add_common_args(parser, methods=method_names())
    parser.add_argument("--experiment", action="append", default=None, help="run only this experiment of the config (repeatable)")
    parser.add_argument("--dense-checkpoint", type=Path, default=None, help="the dense model's weights (sets dense.checkpoint: no dense training)")
    parser.add_argument("--dense-dir", type=Path, default=None, help="cache of dense models trained here (default: <out>/../dense)")
    parser.add_argument("--device", default=None, help="auto (default: cuda when available), cpu, cuda, cuda:1")
    parser.add_argument("--list", action="store_true", help="print the runs the config would make and exit")
    parser.add_argument("--max-batches", type=int, default=None, metavar="N",
                        help="end every training epoch and evaluation after N batches: checks that every stage runs (numbers are not results)")
    parser.add_argument("--amp", action="store_true", help="mixed-precision forward passes on a GPU (ignored on the CPU)")
    return parser.parse_args(argv)


def _config_path(entry: TaskEntry, config: str) -> Path:
    path = Path(config)
    return path if path.suffix else entry.config_dir / f"{config}.yaml"


def _runnable(runs: list) -> list:
    """The runs whose method can run here; one line on stderr per method skipped (a missing optional extra)."""
    reasons = {m: unavailable_reason(m) for m in {recipe.method for _, recipe in runs}}
    for method, reason in sorted(reasons.items()):
        if reason and is_main():
            print(f"skipping {method}: {reason}", file=sys.stderr)
    return [(name, recipe) for name, recipe in runs if not reasons[recipe.method]]


def _info(*args: Any) -> None:
    if is_main():
        print(*args)


def main(entry: TaskEntry, argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the grid a command line asks for; returns every run's results."""
    args = parse_args(entry, argv)
    if args.max_batches is not None and args.max_batches < 1:
        raise ConfigError(f"--max-batches {args.max_batches} must be >= 1")
    overrides = list(args.overrides) + ([f"dense.checkpoint={args.dense_checkpoint}"] if args.dense_checkpoint else [])
    experiments = load_experiments(_config_path(entry, args.config), args.profile, overrides, args.experiment)
    first = experiments[0].settings
    set_threads(args.threads, first.get("threads"))
    device = distributed.init_from_env(resolve_device(args.device or first.get("device")))  # joins torchrun's group, if any
    table = experiments[0].table
    multi = experiments[0].name is not None
    out = args.out or Path("runs") / args.profile / entry.name / (table if multi else "")
    dense_dir = args.dense_dir or out.parent / "dense"
    methods = methods_from_arg(args.method) if args.method != "both" else None
    plans = [(e, _runnable(expand_runs(e, methods, args.seed))) for e in experiments]
    if args.list:
        for experiment, runs in plans:
            for name, _ in runs:
                print(out / (experiment.name or "") / name)
        return []
    needs_root = any(entry.needs_data_root(e.settings) for e in experiments)
    root = resolve_data_root(args.data_root, entry.data_what, required=needs_root)
    data: dict[str, Any] = {}  # every data set is read (and checked) before anything is run
    for experiment, _ in plans:
        key = _data_key(experiment.settings, root)
        if key not in data:
            path = data_path(experiment.settings, root) if entry.needs_data_root(experiment.settings) else None
            data[key] = entry.load_data(experiment.settings, path, out)
    total = sum(len(runs) for _, runs in plans)
    _info(f"{table} ({first['profile']}): {len(plans)} experiment(s), {total} run(s) -> {out}")
    started, everything = time.time(), []
    for experiment, runs in plans:
        shared = data[_data_key(experiment.settings, root)]
        results = entry.run_experiment(experiment, runs, out / (experiment.name or ""), shared, device, args, dense_dir)
        if is_main():
            entry.report(experiment, runs, results)
        everything += results
    _info(f"{table}: {total} run(s) done in {time.time() - started:.0f} s")
    return everything


def _data_key(settings: dict[str, Any], root: Path | None) -> str:
    if "data" not in settings:
        raise ConfigError("the config has no data section")
    return settings_digest({"data": settings["data"], "root": str(root)})
