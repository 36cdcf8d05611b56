"""Figure 12: mAP of PointPillars on KITTI per masked-retraining epoch after pruning at 9.44x,
SLR vs ADMM, one panel per difficulty (easy, moderate, hard), from pointpillars_kitti results files.

    python -m figures.fig_kitti --runs runs/smoke/pointpillars_kitti --out runs/smoke/figures [--rate 9.449] [--metric 3d_iou05_R11]

Epoch 0 is the hard-pruned model; each later point is the evaluation after that retraining
epoch (the pipeline evaluates every retraining epoch). Several seeds
of a method are averaged.
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
from figures.common import runs_out_parser, save_figure, task_results  # noqa: E402

DIFFICULTIES = ("easy", "moderate", "hard")
COLOURS = {"slr": "tab:red", "admm": "tab:blue"}
MARKERS = {"slr": "o", "admm": "s"}


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


def figure12_runs(results: list[dict[str, Any]], rate: float) -> list[dict[str, Any]]:
    """The runs at compression ``rate`` that have retraining epochs; a one-line error when there is none."""
    runs = [r for r in results if abs(float(r["target_compression"]) - rate) < 1e-3 and any(row["stage"] == "retrain" for row in r["history"])]
    if not runs:
        have = sorted({float(r["target_compression"]) for r in results})
        raise DataError(f"no pointpillars_kitti run at {rate:g}x with retraining epochs (rates found: {have}); "
                        f"run `make kitti` or pass --rate")
    return runs


def figure12(results: list[dict[str, Any]], rate: float = 9.449, metric: str = "3d_iou05_R11"):
    """The figure: one panel per difficulty, SLR and ADMM mAP per retraining epoch."""
    runs = figure12_runs(results, rate)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    for ax, diff in zip(axes, DIFFICULTIES):
        for method, (epochs, means, n) in mean_curves(runs, f"{metric}_mAP_{diff}").items():
            label = method.upper() + (f" (mean of {n} seeds)" if n > 1 else "")
            ax.plot(epochs, means, marker=MARKERS.get(method, "^"), color=COLOURS.get(method), label=label)
        ax.set_title(diff.capitalize())
        ax.set_xlabel("retraining epoch (0 = hard-pruned)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"mAP (%), {metric}")
    axes[0].legend()
    fig.suptitle(f"Figure 12: PointPillars retraining after {rate:g}x pruning ({runs[0]['dataset']}, profile {runs[0]['profile']}, ours)")
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
