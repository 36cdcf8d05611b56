"""Run a table's grid of SLR / ADMM pruning runs on image classification.

    python -m classification --table table1 [--profile smoke|paper] [--data-root PATH]
        [--experiment r18_cifar] [--method slr|admm|both] [--seed 0 --seed 1]
        [--dense-checkpoint dense.pt] [--set pruning.epochs=5] [--out runs/smoke/classification/table1]

Under ``torchrun --nproc_per_node=N -m classification ...`` the runs train in
DistributedDataParallel (gloo on the CPU, nccl on GPUs); ``batch_size`` stays the global batch
and only rank 0 writes results, checkpoints, logs and progress bars.

Each run writes ``<out>/<experiment>/<method>_<rate>x[_<sweep>]_seed<seed>/results.json``;
``figures/tableN.py`` turns them into the table. ``--set`` overrides apply to every selected
experiment (keys as in the config's ``defaults``, e.g. ``batch_size=64``, ``data.train_subset=5000``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


from core import distributed
from core.cli import ArgumentParser, add_common_args, methods_from_arg, resolve_data_root, set_threads
from core.methods import method_names, unavailable_reason
from core.errors import exit_on_user_error
from core.grid import run_grid

from .data import load_data
from .experiments import CONFIG_DIR, Experiment, expand_runs, load_table
from .task import ClassificationTask


def _data_path(settings: dict, data_root: Path | None) -> Path | None:
    """``data.root`` when set, else ``data_root/<data.subdir>`` when that exists, else ``data_root``."""
    data = settings["data"]
    if data.get("root"):
        return Path(data["root"])
    if data_root is None:
        return None
    sub = data.get("subdir")
    return data_root / sub if sub and (data_root / sub).is_dir() else data_root


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m classification", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", default="table1",
                        help=f"a config name in {CONFIG_DIR.relative_to(CONFIG_DIR.parent.parent)} (table1, table5, ...) or a YAML path")
    add_common_args(parser, methods=method_names())
    parser.add_argument("--experiment", action="append", default=None, help="run only this experiment of the table (repeatable)")
    parser.add_argument("--dense-checkpoint", type=Path, default=None, help="dense model weights to prune (skips dense training)")
    parser.add_argument("--dense-dir", type=Path, default=None, help="cache of trained dense models (default: <out>/../dense)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--list", action="store_true", help="print the runs the table would make and exit")
    return parser.parse_args(argv)


def _runnable(runs: list) -> list:
    """The runs whose method can run here; one line on stderr per method skipped (a missing optional extra)."""
    reasons = {m: unavailable_reason(m) for m in {recipe.method for _, recipe in runs}}
    for method, reason in sorted(reasons.items()):
        if reason:
            print(f"skipping {method}: {reason}", file=sys.stderr)
    return [(name, recipe) for name, recipe in runs if not reasons[recipe.method]]


def _info(*args, **kwargs) -> None:
    """print() on rank 0 only (under torchrun every rank runs main())."""
    if distributed.is_main():
        print(*args, **kwargs)


def _data_key(settings: dict, path: Path | None) -> str:
    return repr((sorted(settings["data"].items()), str(path)))


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = distributed.init_from_env(args.device)  # joins torchrun's process group, if any
    table, experiments = load_table(args.table, args.profile, args.overrides, args.experiment)
    set_threads(args.threads, experiments[0].settings.get("threads"))
    out = args.out or Path("runs") / args.profile / "classification" / table
    dense_dir = args.dense_dir or out.parent / "dense"
    methods = methods_from_arg(args.method) if args.method != "both" else None
    plans: list[tuple[Experiment, list]] = [(e, _runnable(expand_runs(e, methods, args.seed))) for e in experiments]
    if args.list:
        for experiment, runs in plans:
            for name, _ in runs:
                print(f"{out / experiment.name / name}")
        return
    needs_root = any(e.settings["data"]["name"] != "digits" and not e.settings["data"].get("root") for e in experiments)
    data_root = resolve_data_root(args.data_root, f"{table}'s data sets", required=needs_root)
    data_cache: dict[str, object] = {}  # every data set is read (and checked) before anything is printed or run
    for experiment, _ in plans:
        path = _data_path(experiment.settings, data_root)
        key = _data_key(experiment.settings, path)
        if key not in data_cache:
            data_cache[key] = load_data(experiment.settings["data"], path)
    total = sum(len(runs) for _, runs in plans)
    _info(f"{table} ({experiments[0].settings['profile']}): {len(plans)} experiment(s), {total} run(s) -> {out}")
    started = time.time()
    for experiment, runs in plans:
        data = data_cache[_data_key(experiment.settings, _data_path(experiment.settings, data_root))]

        def make_task(recipe, experiment=experiment, data=data):
            return ClassificationTask(experiment.settings, data, dense_dir, args.dense_checkpoint, device,
                                      progress=not args.no_progress)

        results = run_grid(make_task, runs, out / experiment.name, resume=args.resume, progress=not args.no_progress)
        for (name, _), r in zip(runs, results):
            m, metric = r["metrics"], r["primary_metric"]
            _info(f"{experiment.name}/{name}: {metric} dense {m['dense'][metric]:.2f}  trained {m['after_training'][metric]:.2f}  "
                  f"hard-pruned {m['after_hard_pruning'][metric]:.2f}  retrained {m['after_retraining'][metric]:.2f}  "
                  f"rate {r['achieved_compression']['pruned_layers']:.2f}x")
    _info(f"{table}: {total} run(s) done in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
