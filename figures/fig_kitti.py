"""Figures 3 and 12 of the paper (PointPillars on KITTI), from pointpillars_kitti results files, with
the paper's own numbers beside ours.

Figure 3: mAP after hard-pruning per compression rate, SLR vs ADMM, one panel per difficulty (drawn
by ``python -m figures.table3`` beside Table 3). Figure 12: mAP per masked-retraining epoch after
pruning at 9.44x, SLR vs ADMM, one panel per difficulty:

    python -m figures.fig_kitti --runs runs/smoke/pointpillars_kitti --out runs/smoke/figures [--rate 9.449] [--metric 3d_iou05_R11]

Epoch 0 is the hard-pruned model; each later point is the evaluation after that retraining
epoch (the pipeline evaluates every retraining epoch). Several seeds
of a method are averaged.

The paper's overlay (see ``figures/paper_numbers/figures.yaml``): the paper prints no numbers for
its Figures 3 and 12, only Table 3. Figure 3's points are Table 3's after-hard-pruning columns, so
they are drawn in full (dashed, x markers). For Figure 12 only two points per method are known:
Table 3's after-hard-pruning value at epoch 0 and its after-retraining value at epoch 3 (Table 3 is
"after 3 epochs of masked-retraining"); they are drawn as unconnected markers, and epochs 1-2 (and
any later epoch) are left out rather than guessed. Both figures draw Table 3's original (dense) mAP
as a dotted line. The paper's numbers are mAP at IoU 0.5 on the real KITTI validation split: they
compare with ours only for the same metric (the default ``3d_iou05_R11``) and data.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from core.errors import DataError, exit_on_user_error  # noqa: E402
from figures.common import paper_numbers, runs_out_parser, save_figure, task_results  # noqa: E402

DIFFICULTIES = ("easy", "moderate", "hard")
COLOURS = {"slr": "tab:red", "admm": "tab:blue"}
MARKERS = {"slr": "o", "admm": "s"}
METHODS = ("admm", "slr")
PAPER_RATE_TOLERANCE = 1e-2  # the paper's 9.44x (text) is its Table 3's 9.449x


def paper_kitti() -> dict[str, Any]:
    """The paper's Table 3 (``rows[difficulty][rate][method] = [after hard-pruning, after retraining]``)
    with the overlay settings of Figures 3 and 12 under ``figure3`` and ``figure12``."""
    figures = paper_numbers("figures")
    return {**paper_numbers("table3"), "figure3": figures["figure3"], "figure12": figures["figure12"]}


def paper_cell(paper: dict[str, Any], diff: str, rate: float) -> dict[str, list[float]] | None:
    """The paper's Table 3 entry ``{method: [after hard-pruning, after retraining]}`` at ``rate``, or None."""
    for key, methods in paper["rows"][diff].items():
        if abs(float(key) - rate) < PAPER_RATE_TOLERANCE:
            return methods
    return None


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def retrain_curve(result: dict[str, Any], key: str) -> dict[int, float]:
    """``{epoch: value}`` of metric ``key``: 0 after hard-pruning, then one per evaluated retraining epoch."""
    curve = {}
    hard = _number(result["metrics"].get("after_hard_pruning", {}).get(key))
    if hard is not None:
        curve[0] = hard
    for row in result["history"]:
        if row["stage"] == "retrain" and row.get("metrics"):
            value = _number(row["metrics"].get(key))
            if value is not None:
                curve[int(row["epoch"]) + 1] = value
    return curve


def mean_curves(results: list[dict[str, Any]], key: str) -> dict[str, tuple[list[int], list[float], int]]:
    """Per method: epochs, the mean over seeds at each epoch, and the number of runs."""
    by_method: dict[str, list[dict[int, float]]] = defaultdict(list)
    for r in results:
        by_method[r["method"]].append(retrain_curve(r, key))
    out = {}
    for method, curves in sorted(by_method.items()):
        epochs = sorted({e for c in curves for e in c})
        means = [sum(c[e] for c in curves if e in c) / sum(e in c for c in curves) for e in epochs]
        out[method] = (epochs, means, len(curves))
    return out


def _mean(values: list[float | None]) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else math.nan


def figure3(results: list[dict[str, Any]], metric: str = "3d_iou05_R11", paper: dict[str, Any] | None = None):
    """Figure 3: mAP after hard-pruning per compression rate, one panel per difficulty; ours (mean over
    seeds) solid, the paper's Table 3 after-hard-pruning values dashed with x markers."""
    paper = paper_kitti() if paper is None else paper
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["method"], round(float(r["target_compression"]), 3))].append(r)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for ax, diff in zip(axes, DIFFICULTIES):
        key = f"{metric}_mAP_{diff}"
        for method in sorted({m for m, _ in groups}, key=lambda m: (m not in METHODS, m)):
            rates = sorted(rate for m, rate in groups if m == method)
            means = [_mean([_number(r["metrics"].get("after_hard_pruning", {}).get(key)) for r in groups[(method, rate)]]) for rate in rates]
            ax.plot(rates, means, marker=MARKERS.get(method, "^"), color=COLOURS.get(method), label=f"{method.upper()} (ours)")
        # the paper's Figure 3 points: Table 3's after-hard-pruning column at each of its rates
        rows = paper["rows"][diff]
        for method in METHODS:
            rates = sorted(float(k) for k in rows)
            values = [rows[k][method][0] for k in sorted(rows, key=float)]
            ax.plot(rates, values, linestyle="--", marker="x", color=COLOURS[method], alpha=0.7,
                    label=f"{method.upper()} (paper, Table 3)")
        ax.axhline(paper["original"][diff], color="gray", linestyle=":", label="original (paper, Table 3)")
        ax.set_title(f"({'abc'[DIFFICULTIES.index(diff)]}) {diff.capitalize()}")
        ax.set_xlabel("compression rate (×)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"mAP after hard-pruning (%), {metric}")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside the panels: hides no point
    where = f"{results[0]['dataset']}, profile {results[0]['profile']}" if results else "no runs"
    fig.suptitle(f"Figure 3: PointPillars mAP after hard-pruning vs compression rate (ours: {where}; dashed: paper, Table 3)")
    fig.tight_layout()
    return fig


def figure12_runs(results: list[dict[str, Any]], rate: float) -> list[dict[str, Any]]:
    """The runs at compression ``rate`` that have retraining epochs; a one-line error when there is none."""
    runs = [r for r in results if abs(float(r["target_compression"]) - rate) < 1e-3 and any(row["stage"] == "retrain" for row in r["history"])]
    if not runs:
        have = sorted({float(r["target_compression"]) for r in results})
        raise DataError(f"no pointpillars_kitti run at {rate:g}x with retraining epochs (rates found: {have}); "
                        f"run `make kitti` or pass --rate")
    return runs


def figure12(results: list[dict[str, Any]], rate: float = 9.449, metric: str = "3d_iou05_R11", paper: dict[str, Any] | None = None):
    """The figure: one panel per difficulty, SLR and ADMM mAP per retraining epoch, ours as lines and the
    paper's two known points (Table 3 at ``rate``: hard-pruned at epoch 0, retrained at epoch 3) as markers."""
    runs = figure12_runs(results, rate)
    paper = paper_kitti() if paper is None else paper
    paper_epoch = int(paper["figure12"]["retrain_epochs"])
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    overlaid = False
    for ax, diff in zip(axes, DIFFICULTIES):
        for method, (epochs, means, n) in mean_curves(runs, f"{metric}_mAP_{diff}").items():
            label = method.upper() + (f" (ours, mean of {n} seeds)" if n > 1 else " (ours)")
            ax.plot(epochs, means, marker=MARKERS.get(method, "^"), color=COLOURS.get(method), label=label)
        cell = paper_cell(paper, diff, rate)
        if cell is not None:  # Table 3 has this rate: its two values, unconnected (epochs 1-2 are unknown)
            overlaid = True
            for method in METHODS:
                ax.plot([0, paper_epoch], cell[method], linestyle="none", marker="X", markersize=9, color=COLOURS[method],
                        markeredgecolor="black", alpha=0.8, label=f"{method.upper()} (paper, Table 3: epochs 0 and {paper_epoch})")
            ax.axhline(paper["original"][diff], color="gray", linestyle=":", label="original (paper, Table 3)")
        ax.set_title(f"({'abc'[DIFFICULTIES.index(diff)]}) {diff.capitalize()}")
        ax.set_xlabel("retraining epoch (0 = hard-pruned)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"mAP (%), {metric}")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside the panels: hides no point
    theirs = "; X: paper, Table 3" if overlaid else f"; the paper's Table 3 has no {rate:g}x"
    fig.suptitle(f"Figure 12: PointPillars mAP per retraining epoch after {rate:g}x pruning "
                 f"(ours: {runs[0]['dataset']}, profile {runs[0]['profile']}{theirs})")
    fig.tight_layout()
    return fig


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = runs_out_parser(__doc__, runs=Path("runs/smoke/pointpillars_kitti"), out=Path("runs/smoke/figures"))
    parser.add_argument("--rate", type=float, default=9.449, help="compression rate of the runs to draw (the paper's 9.44x)")
    parser.add_argument("--metric", default="3d_iou05_R11", help="prefix of the mAP keys: <3d|bev|bbox|aos>_<iou05|official|loose>_<R11|R40>")
    args = parser.parse_args(argv)
    results = task_results(args.runs, "pointpillars_kitti", "kitti")
    fig = figure12(results, args.rate, args.metric)
    written = save_figure(fig, args.out, "figure12")
    plt.close(fig)
    print("written: " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
