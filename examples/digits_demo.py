"""A one-minute example of the core API and pipeline: SLR vs ADMM on scikit-learn's digits.

    python -m examples.digits_demo [--out runs/core_demo] [--rate 8] [--sparsity my_ratios.yaml]

The 1,797 8x8 digit images ship inside scikit-learn, so nothing is downloaded. A small MLP is
trained dense, then pruned to ``--rate``x over its two hidden layers with SLR and with ADMM,
hard-pruned and masked-retrained; the script prints accuracy after each stage. ``--sparsity``
prunes as a sparsity YAML says instead (layers ``0.weight``, ``2.weight``, ``4.weight``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from core.errors import ConfigError, exit_on_user_error
from core.harness.cli import ArgumentParser
from core.harness.grid import run_grid
from core.harness.recipe import PruningRecipe
from core.harness.results import format_summary
from core.harness.task import BatchResult, PipelineTask
from core.pruning.pruner import as_sparsity_config


class DigitsTask(PipelineTask):
    """A small MLP on scikit-learn's digits: the five hooks a task implements."""

    task = "core_demo"
    model_name = "mlp-64-128-64-10"
    dataset_name = "sklearn-digits"
    primary_metric = "top1"
    dense_keys = ("lr", "batch_size", "dense")  # what the dense model trained here depends on (its cache file's digest)

    def __init__(self, lr: float = 0.01, batch_size: int = 64, dense_epochs: int = 15) -> None:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = torch.tensor(x, dtype=torch.float32) / 16.0
        y = torch.tensor(y)
        split = torch.Generator().manual_seed(0)
        order = torch.randperm(len(y), generator=split)
        train, test = order[:1400], order[1400:]
        self.train = TensorDataset(x[train], y[train])
        self.test = (x[test], y[test])
        self.lr, self.batch_size, self.dense_epochs = lr, batch_size, dense_epochs
        self.settings = {"lr": lr, "batch_size": batch_size, "dense": {"epochs": dense_epochs}}

    def new_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

    def build_optimizer(self, model: nn.Module, stage: str):
        return torch.optim.Adam(model.parameters(), lr=self.lr), None

    def train_batches(self, stage: str, epoch: int, seed: int) -> DataLoader:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def batch_loss(self, net: nn.Module, batch) -> BatchResult:
        x, y = batch
        logits = net(x)
        return BatchResult(nn.functional.cross_entropy(logits, y), len(y), (logits.detach().argmax(1) == y).sum(), len(y))

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        x, y = self.test
        return {"top1": (model(x).argmax(1) == y).float().mean().item() * 100}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m examples.digits_demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/core_demo"))
    parser.add_argument("--rate", type=float, default=8.0, help="target compression of the hidden layers")
    parser.add_argument("--sparsity", type=Path, default=None,
                        help="a sparsity YAML (prune_ratios or target_rate over 0.weight, 2.weight, 4.weight) instead of --rate")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--retrain-epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from the runs' last checkpoints")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.rate < 1:
        raise ConfigError(f"--rate {args.rate} must be >= 1")
    sparsity = as_sparsity_config(args.sparsity) if args.sparsity else {"target_rate": args.rate, "include": ["0.weight", "2.weight"]}
    recipes = [(method, PruningRecipe(method=method, sparsity=sparsity, epochs=args.epochs, retrain_epochs=args.retrain_epochs, seed=args.seed))
               for method in ("slr", "admm")]
    task = DigitsTask()
    rows = run_grid(lambda recipe: task, recipes, args.out, resume=args.resume, progress=not args.no_progress, dense_dir=args.out / "dense")
    pruned = f"as {args.sparsity} says" if args.sparsity else f"{args.rate}x over the hidden layers"
    print(f"\nSLR vs ADMM, MLP on digits, {pruned} (top-1 %, test split of 397 images)")
    print(format_summary(rows))
    print(f"results: {args.out}/<method>/results.json")


if __name__ == "__main__":
    main()
