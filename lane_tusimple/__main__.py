"""Prune UFLD on TuSimple with SLR and ADMM: the runs of the paper's Table 4.

    python -m lane_tusimple --profile smoke                    # synthetic TuSimple-format frames, CPU, minutes
    python -m lane_tusimple --profile paper --data-root /data/tusimple   # needs UFLD's tusimple_18.pth there

Each (method, compression rate, seed) run goes through core's pipeline (SLR/ADMM training,
hard-pruning, masked retraining) and writes ``<out>/<method>_<rate>x_seed<seed>/results.json``.
"""
from __future__ import annotations

import argparse
from pathlib import Path


from core.harness.cli import ArgumentParser, add_common_args, dataset_dir, methods_from_arg, resolve_data_root, set_threads
from core.harness.config import apply_overrides, load_run_config
from core.errors import exit_on_user_error
from core.harness.grid import run_grid, run_name
from core.harness.pipeline import PruningRecipe
from core.harness.results import format_summary

from .synthetic import ensure_synthetic_tusimple
from .task import LaneTask, build_datasets, sparsity_for_rate

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "ufld_tusimple.yaml"


def build_recipes(config: dict, methods: list[str], seeds: list[int]) -> list[tuple[str, PruningRecipe]]:
    """One recipe per method, rate and seed of ``config['pruning']``."""
    pruning = config["pruning"]
    recipes = []
    for seed in seeds:
        for rate in pruning["rates"]:
            for method in methods:
                recipe = PruningRecipe(method=method, sparsity=sparsity_for_rate(config, rate), epochs=int(pruning["epochs"]),
                                       retrain_epochs=int(pruning["retrain_epochs"]), rho=float(pruning["rho"]),
                                       s0=float(pruning["s0"]), M=float(pruning["M"]), r=float(pruning["r"]), seed=seed,
                                       profile=config["profile"])
                recipes.append((run_name(recipe), recipe))
    return recipes


def tusimple_root(data_root: Path | None) -> Path:
    """The TuSimple folder (clips and label json lines) under ``--data-root`` / ``$DATA_ROOT``: its ``tusimple/``, else itself."""
    return dataset_dir(resolve_data_root(data_root, "TuSimple"), "tusimple")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m lane_tusimple", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="run config (YAML with profiles)")
    args = parser.parse_args(argv)

    config = apply_overrides(load_run_config(args.config, args.profile), args.overrides)
    set_threads(args.threads, config.get("threads"))
    out = args.out or Path("runs") / args.profile / "lane_tusimple"
    seeds = args.seed or [0]
    recipes = build_recipes(config, methods_from_arg(args.method), seeds)  # checks the config before any data work
    synthetic = config["data"].get("synthetic")
    if synthetic:
        # generated beside the runs, never inside a user's data root
        data_root = ensure_synthetic_tusimple(out / "synthetic_tusimple", int(synthetic["train"]), int(synthetic["test"]),
                                              tuple(synthetic["image_size"]), int(synthetic["seed"]))
        dataset_name = "tusimple-synthetic"
    else:
        data_root = tusimple_root(args.data_root)
        dataset_name = "tusimple"
    train_set, test_set = build_datasets(config, data_root)

    def make_task(recipe: PruningRecipe) -> LaneTask:
        dense_path = out / "dense" / f"dense_seed{recipe.seed}.pt" if not config["dense"].get("checkpoint") else None
        return LaneTask(config, train_set, test_set, recipe, dense_path=dense_path, data_root=data_root, dataset_name=dataset_name,
                        progress=not args.no_progress)

    if not args.resume:  # a fresh grid also retrains the dense model
        for stale in (out / "dense").glob("dense_seed*.pt"):
            stale.unlink()
    results = run_grid(make_task, recipes, out,
                       resume=args.resume, progress=not args.no_progress)
    print(f"\nUFLD on {dataset_name} ({args.profile}), TuSimple accuracy % (test frames: {len(test_set)})")
    print(format_summary(results))
    print(f"results: {out}/<run>/results.json")


if __name__ == "__main__":
    main()
