"""PointPillars on KITTI pruned with SLR and ADMM at the paper's rates (Table 3).

    python -m pointpillars_kitti [--profile smoke|paper] [--data-root KITTI] [--method both] [--set key=value]

The smoke profile generates KITTI-format scenes and finishes in minutes on a CPU; the paper
profile reads ``<data-root>/kitti/training`` and ``<data-root>/kitti/ImageSets/{train,val}.txt``
(or the same under ``<data-root>`` itself). Without ``dense_checkpoint`` it first trains the dense
model on OpenPCDet's schedule (``dense_epochs``: 80, one-cycle Adam at 0.003) and caches it.
"""
from __future__ import annotations

import argparse
from pathlib import Path


from core.harness.cli import ArgumentParser, add_common_args, dataset_dir, methods_from_arg, resolve_data_root, set_threads
from core.harness.config import apply_overrides, load_run_config
from core.errors import ConfigError, exit_on_user_error
from core.harness.grid import run_grid, run_name
from core.harness.pipeline import PruningRecipe

from .synthetic import generate_kitti_scenes
from .task import KittiTask

CONFIG = Path(__file__).resolve().parent / "configs" / "pointpillars.yaml"


def kitti_root(data_root: Path | None) -> Path:
    """The KITTI object folder (holding ``training/`` and ``ImageSets/``) under ``--data-root`` / ``$DATA_ROOT``."""
    return dataset_dir(resolve_data_root(data_root, "KITTI object (kitti/training/, kitti/ImageSets/)"), "kitti")


def build_recipes(cfg: dict, methods: list[str], seeds: list[int]) -> list[tuple[str, PruningRecipe]]:
    """One recipe per method, compression rate and seed."""
    recipes = []
    for seed in seeds:
        for method in methods:
            for rate in cfg["compression_rates"]:
                sparsity = {"target_rate": float(rate), **cfg["sparsity"]}
                recipe = PruningRecipe(method=method, sparsity=sparsity, epochs=int(cfg["epochs"]), retrain_epochs=int(cfg["retrain_epochs"]),
                                       rho=cfg["rho"], s0=cfg["s0"], M=cfg["M"], r=cfg["r"], seed=seed, profile=cfg["profile"],
                                       eval_every=int(cfg.get("eval_every", 1)))
                recipes.append((run_name(recipe), recipe))
    return recipes


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = add_common_args(ArgumentParser(prog="python -m pointpillars_kitti", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--dense-dir", type=Path, default=None, help="cache of dense models trained here (default: <out>/../dense)")
    args = parser.parse_args(argv)
    cfg = apply_overrides(load_run_config(args.config, args.profile), args.overrides)
    set_threads(args.threads, cfg.get("threads"))
    out = args.out or Path("runs") / args.profile / "pointpillars_kitti"
    if cfg["data"]["source"] == "synthetic":
        data = cfg["data"]
        root = generate_kitti_scenes(out / "synthetic_kitti", int(data["num_train_scenes"]), int(data["num_eval_scenes"]),
                                     int(data.get("synthetic_seed", 0)), float(data.get("max_range", 30.0)))
    elif cfg["data"]["source"] == "kitti":
        root = kitti_root(args.data_root)
    else:
        raise ConfigError(f"data.source '{cfg['data']['source']}' is unknown; use kitti or synthetic")
    if not cfg.get("dense_checkpoint") and int(cfg.get("dense_epochs") or 0) <= 0:
        raise ConfigError("no dense model: pass --set dense_checkpoint=PATH (a PointPillars state_dict) or --set dense_epochs=80")
    seeds = args.seed or [0]
    task = KittiTask(cfg, root, progress=not args.no_progress, dense_dir=args.dense_dir or out.parent / "dense")

    def task_for(recipe: PruningRecipe) -> KittiTask:  # one dense model for all; shuffles and augmentation follow the seed
        task.cfg["seed"] = recipe.seed
        return task

    results = run_grid(task_for, build_recipes(cfg, methods_from_arg(args.method), seeds), out, resume=args.resume,
                       progress=not args.no_progress)
    if task.dense_history:
        print("dense training loss per epoch: " + ", ".join(f"{x:.3f}" for x in task.dense_history))
    if task.dense_source:
        print(f"dense model: {task.dense_source}")
    print(f"{'run':<22} {'dense':>7} {'hard-pruned (E/M/H)':>22} {'retrained (E/M/H)':>22} {'rate':>7}")
    for r in results:
        m = r["metrics"]

        def emh(stage: str) -> str:
            return "/".join(f"{float(m[stage][f'3d_iou05_R11_mAP_{d}']):.1f}" for d in ("easy", "moderate", "hard"))

        print(f"{r['method'] + ' ' + format(r['target_compression'], 'g') + 'x':<22} {float(m['dense'][r['primary_metric']]):>7.1f} "
              f"{emh('after_hard_pruning'):>22} {emh('after_retraining'):>22} {r['achieved_compression']['pruned_layers']:>6.2f}x")
    print(f"results: {out}/<run>/results.json (3D mAP at IoU 0.5, R11; every metric is in the files)")


if __name__ == "__main__":
    main()
