"""Pruning-stage cost of SLR, ADMM and their peers, interleaved so that a shared CPU's changing
load hits every method alike (a benchmark, not a test).

The grid of ``make peers-cpu`` runs methods one after another, so its wall times also measure
how busy the machine was at the time. Here every round runs each method's pruning stage once
(``--epochs`` epochs of the CPU-scale peers config, hard-pruning, no retraining) in turn, and the
medians over rounds are compared with plain training (``magnitude``: its pruning epochs are plain
training, its pruning one call of torch.nn.utils.prune).

    python benchmarks/bench_peers.py --data-root ../shared/data [--rounds 3] [--epochs 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classification.data import load_data  # noqa: E402
from classification.experiments import load_table  # noqa: E402
from classification.task import ClassificationTask  # noqa: E402
from core.pruning.methods import unavailable_reason  # noqa: E402
from core.harness.pipeline import PruningRecipe, run_pipeline  # noqa: E402

METHODS = ("magnitude", "gmp", "admm", "slr", "nni_admm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding cifar10/")
    parser.add_argument("--dense-dir", type=Path, default=Path("runs/cpu/classification/dense"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rate", type=float, default=4.69)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    _, (experiment,) = load_table("peers_cpu", "paper")
    settings = experiment.settings
    data = load_data(settings["data"], args.data_root / settings["data"]["subdir"])
    methods = [m for m in METHODS if not unavailable_reason(m)]
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for method in methods:
                recipe = PruningRecipe(method=method, sparsity={**settings["sparsity"], "target_rate": args.rate},
                                       epochs=args.epochs, retrain_epochs=0, profile="bench",
                                       **{k: v for k, v in settings["pruning"].items() if k not in ("epochs", "retrain_epochs")})
                task = ClassificationTask({**settings, "pruning": {**settings["pruning"], "epochs": args.epochs, "retrain_epochs": 0}},
                                          data, args.dense_dir, progress=False)
                result = run_pipeline(task, recipe, Path(tmp) / f"{method}_{round_}", progress=False)
                seconds[method].append(result["stage_wall_time_s"]["prune"])
                print(f"round {round_ + 1} {method:<10} {seconds[method][-1]:7.1f} s", file=sys.stderr)
    base = statistics.median(seconds["magnitude"])
    print(f"\npruning stage ({args.epochs} epoch(s) + hard-pruning + its evaluations), median of {args.rounds} interleaved rounds, "
          f"{args.threads} thread(s):")
    for method in methods:
        median = statistics.median(seconds[method])
        print(f"  {method:<10} {median:7.1f} s   {median / base:5.2f}x plain training (magnitude)   rounds: "
              + " ".join(f"{s:.1f}" for s in seconds[method]))


if __name__ == "__main__":
    main()
