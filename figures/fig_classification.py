"""The classification figures, drawn from results files only.

    python -m figures.fig_classification figure1 --runs runs/smoke/classification/table7 --out runs/smoke/figures
    python -m figures.fig_classification figure2 --runs runs/smoke/classification/table1 --out ...  (ResNet-18 ImageNet)
    python -m figures.fig_classification figure5|figure6|figure7 --runs runs/smoke/classification/table5 --out ...
    python -m figures.fig_classification figure8|figure9|figure10|figure11 --runs runs/smoke/classification/table1 --out ...

figure1: accuracy after hard-pruning vs compression rate, SLR vs ADMM (paper's Table 7 dashed).
figure2: constraint violation ||W - Z|| per SLR/ADMM epoch. figure5/6: surrogate optimality
condition per epoch (one run / every rho, s0). figure7: retraining accuracy for a large and a
small initial step size. figure8-11: losses and accuracies of SLR vs ADMM during training and
retraining (ResNet-18 / ResNet-50 on CIFAR-10 / ImageNet).
"""
from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from core.harness.cli import ArgumentParser  # noqa: E402
from core.errors import DataError, exit_on_user_error  # noqa: E402
from figures.common import metric, paper_numbers, save_figure  # noqa: E402
from figures.table1 import classification_results, experiment_of  # noqa: E402

__all__ = ["FIGURES", "figure1", "figure2", "figure5", "figure6", "figure7", "training_curves", "prune_rows"]

COLORS = {"slr": "tab:blue", "admm": "tab:orange"}
# figure -> (default experiment of the table it reads, the paper's caption)
CURVE_FIGURES = {
    "figure8": ("r18_cifar", "ResNet-18, CIFAR-10"),
    "figure9": ("r50_cifar", "ResNet-50, CIFAR-10"),
    "figure10": ("r18_imagenet", "ResNet-18, ImageNet"),
    "figure11": ("r50_imagenet", "ResNet-50, ImageNet"),
}


def prune_rows(result: dict[str, Any], stage: str = "prune") -> list[dict[str, Any]]:
    """The per-epoch history rows of one stage (``prune`` or ``retrain``)."""
    return [row for row in result["history"] if row["stage"] == stage]


def _select(results: Sequence[dict[str, Any]], experiment: str | None) -> list[dict[str, Any]]:
    chosen = [r for r in results if experiment is None or experiment_of(r) == experiment]
    if not chosen:
        found = sorted({experiment_of(r) for r in results})
        raise DataError(f"no results of experiment '{experiment}' (found {found}); pass --experiment or run its table")
    return chosen


def _first_seed(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One run per method (the lowest seed), for curves."""
    by_method: dict[str, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: r["seed"]):
        by_method.setdefault(r["method"], r)
    return by_method


def figure1(results: Sequence[dict[str, Any]], experiment: str | None = "r18_cifar", paper: dict | None = None):
    """Accuracy after hard-pruning vs target compression rate, mean ± std over seeds."""
    chosen = _select(results, experiment)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for method in ("slr", "admm"):
        by_rate: dict[float, list[float]] = defaultdict(list)
        for r in chosen:
            if r["method"] == method:
                by_rate[float(r["target_compression"])].append(metric(r, "after_hard_pruning"))
        if not by_rate:
            continue
        rates = sorted(by_rate)
        means = [statistics.mean(by_rate[x]) for x in rates]
        stds = [statistics.stdev(by_rate[x]) if len(by_rate[x]) > 1 else 0.0 for x in rates]
        ax.errorbar(rates, means, yerr=stds, marker="o", capsize=3, color=COLORS[method], label=f"{method.upper()} (ours)")
        if paper:
            ref = sorted((row["rate"], row["after_hard_pruning"]) for row in paper["rows"] if row["method"] == method)
            ax.plot(*zip(*ref), linestyle="--", marker="x", color=COLORS[method], alpha=0.6, label=f"{method.upper()} (paper)")
    ax.set_xlabel("compression rate (×)")
    ax.set_ylabel(f"{chosen[0]['primary_metric']} accuracy after hard-pruning (%)")
    ax.set_title(f"Figure 1: accuracy after hard-pruning vs compression rate\n{chosen[0]['model']} on {chosen[0]['dataset']} "
                 f"(profile {chosen[0]['profile']})" + ("; dashed: paper, Table 7" if paper else ""), fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def figure2(results: Sequence[dict[str, Any]], experiment: str | None = "r18_imagenet"):
    """Total constraint violation ||W - Z||_F per SLR / ADMM epoch."""
    chosen = _first_seed(_select(results, experiment))
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for method, r in sorted(chosen.items()):
        rows = [row for row in prune_rows(r) if row.get("violation") is not None]
        ax.plot([row["epoch"] + 1 for row in rows], [row["violation"] for row in rows], marker=".", color=COLORS.get(method),
                label=method.upper())
    any_r = next(iter(chosen.values()))
    ax.set_xlabel("epoch")
    ax.set_ylabel("constraint violation ||W - Z||")
    ax.set_title(f"Figure 2: constraint violation per epoch, SLR vs ADMM\n{any_r['model']} on {any_r['dataset']}, "
                 f"{any_r['target_compression']:g}× (profile {any_r['profile']})", fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def _recipe(r: dict[str, Any], key: str) -> float:
    return float(r["config"]["recipe"][key])


def _condition_series(r: dict[str, Any]) -> tuple[list[int], list[float]]:
    rows = [row for row in prune_rows(r) if "condition" in row]
    return [row["epoch"] + 1 for row in rows], [float("nan") if row["condition"] is None else float(bool(row["condition"])) for row in rows]


def figure5(results: Sequence[dict[str, Any]], rho: float = 0.1, s0: float = 1e-4):
    """Surrogate optimality condition (1 satisfied, 0 not) per epoch of one SLR run."""
    runs = [r for r in results if r["method"] == "slr" and abs(_recipe(r, "rho") - rho) < 1e-12 and abs(_recipe(r, "s0") - s0) < 1e-12]
    if not runs:
        raise DataError(f"no SLR run with rho={rho:g}, s0={s0:g}; run `make table5` first")
    r = min(runs, key=lambda r: r["seed"])
    fig, ax = plt.subplots(figsize=(6, 2.4))
    ax.step(*_condition_series(r), where="mid", color=COLORS["slr"])
    ax.set_yticks([0, 1])
    ax.set_xlabel("epoch")
    ax.set_ylabel("condition")
    ax.set_title(f"Figure 5: surrogate condition, {r['model']} ({r['dataset']}), rho={rho:g}, s0={s0:g}")
    return fig


def figure6(results: Sequence[dict[str, Any]]):
    """Surrogate optimality condition per epoch for every (rho, s0) of the Table 5 runs."""
    runs = {}
    for r in sorted((r for r in results if r["method"] == "slr"), key=lambda r: r["seed"]):
        runs.setdefault((_recipe(r, "rho"), _recipe(r, "s0")), r)
    if not runs:
        raise DataError("no SLR runs; run `make table5` first")
    rhos = sorted({k[0] for k in runs}, reverse=True)
    s0s = sorted({k[1] for k in runs}, reverse=True)
    fig, axes = plt.subplots(len(rhos), len(s0s), figsize=(3 * len(s0s), 1.8 * len(rhos)), squeeze=False, sharex=True, sharey=True)
    for i, rho in enumerate(rhos):
        for j, s0 in enumerate(s0s):
            ax = axes[i][j]
            if (rho, s0) in runs:
                ax.step(*_condition_series(runs[(rho, s0)]), where="mid", color=COLORS["slr"])
            ax.set_title(f"rho={rho:g}, s0={s0:g}", fontsize=8)
            ax.set_yticks([0, 1])
    fig.suptitle("Figure 6: surrogate optimality condition per epoch (1: satisfied)")
    fig.tight_layout()
    return fig


def figure7(results: Sequence[dict[str, Any]], rho: float = 0.1, step_sizes: Sequence[float] = (1e-2, 1e-5)):
    """Test accuracy per retraining epoch for a large and a small initial step size."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    drawn = 0
    for s0 in step_sizes:
        runs = [r for r in results if r["method"] == "slr" and abs(_recipe(r, "rho") - rho) < 1e-12 and abs(_recipe(r, "s0") - s0) < 1e-12]
        if not runs:
            continue
        r = min(runs, key=lambda r: r["seed"])
        name = r["primary_metric"]
        points = [(0, metric(r, "after_hard_pruning"))] + [(row["epoch"] + 1, row["metrics"][name]) for row in prune_rows(r, "retrain") if row["metrics"]]
        ax.plot(*zip(*points), marker="o", label=f"s0={s0:g}")
        drawn += 1
    if not drawn:
        raise DataError(f"no SLR runs with rho={rho:g} and s0 in {list(step_sizes)}; run `make table5` first")
    ax.set_xlabel("retraining epoch (0: hard-pruned)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Figure 7: retraining after SLR, rho={rho:g}")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def training_curves(results: Sequence[dict[str, Any]], experiment: str, title: str):
    """(a) cross-entropy and (b) mixed loss during training, (c) training accuracy during training
    (as the paper's panel c; results files without it fall back to the test accuracy, and the
    panel says so), (d) test accuracy and (e) training loss during retraining, SLR vs ADMM."""
    chosen = _first_seed(_select(results, experiment))
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.4))
    recorded = any(row.get("train_accuracy") is not None for r in chosen.values() for row in prune_rows(r, "prune"))
    panels: list[tuple[str, str, Callable[[dict], Any]]] = [
        ("prune", "(a) cross-entropy loss during training", lambda row: row["loss"]),
        ("prune", "(b) mixed loss during training", lambda row: row.get("mixed_loss")),
        ("prune", "(c) training accuracy during training (%)", lambda row: row.get("train_accuracy")) if recorded else
        ("prune", "(c) test accuracy during training (%; no training accuracy recorded)", None),
        ("retrain", "(d) test accuracy during retraining (%)", None),
        ("retrain", "(e) training loss during retraining", lambda row: row["loss"]),
    ]
    for ax, (stage, label, value) in zip(axes, panels):
        for method, r in sorted(chosen.items()):
            name = r["primary_metric"]
            get = value or (lambda row, name=name: row["metrics"][name] if row["metrics"] else None)
            points = [(row["epoch"] + 1, get(row)) for row in prune_rows(r, stage)]
            points = [(x, y) for x, y in points if y is not None]
            if points:
                ax.plot(*zip(*points), marker=".", color=COLORS.get(method), label=method.upper())
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend()
    any_r = next(iter(chosen.values()))
    fig.suptitle(f"{title} ({any_r['target_compression']:g}×, profile {any_r['profile']}, data {any_r['dataset']})")
    fig.tight_layout()
    return fig


FIGURES = ("figure1", "figure2", "figure5", "figure6", "figure7", *CURVE_FIGURES)


def draw(name: str, results: Sequence[dict[str, Any]], experiment: str | None = None):
    """The matplotlib figure ``name`` from ``results``."""
    if name == "figure1":
        return figure1(results, experiment or "r18_cifar", paper_numbers("table7"))
    if name == "figure2":
        return figure2(results, experiment or "r18_imagenet")
    if name == "figure5":
        return figure5(results)
    if name == "figure6":
        return figure6(results)
    if name == "figure7":
        return figure7(results)
    if name in CURVE_FIGURES:
        default, label = CURVE_FIGURES[name]
        return training_curves(results, experiment or default, f"Figure {name[6:]}: SLR vs ADMM losses and accuracy in training and retraining, {label}")
    raise DataError(f"unknown figure '{name}'; choose from {', '.join(FIGURES)}")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figures", nargs="+", choices=FIGURES)
    parser.add_argument("--runs", type=Path, required=True, help="folder with the table's classification results files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG and PDF files")
    parser.add_argument("--experiment", default=None, help="experiment of the table to draw (default: the paper's)")
    parser.add_argument("--suffix", default="", help="appended to the file names, e.g. _cpu")
    args = parser.parse_args(argv)
    results = classification_results(args.runs, "table1")
    for name in args.figures:
        fig = draw(name, results, args.experiment)
        paths = save_figure(fig, args.out, f"{name}{args.suffix}")
        plt.close(fig)
        print(f"written: {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    main()
