"""Figure 4: mAP during masked retraining after 2x pruning of YOLOv3-tiny, SLR vs ADMM, from
detection_yolo results files. (Its heatmaps, Figures 17 and 23, are drawn by figures.heatmaps.)

    python -m figures.fig_yolo --runs runs/smoke/detection_yolo --out runs/smoke/figures
"""
from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from core.errors import DataError, exit_on_user_error  # noqa: E402
from figures.common import runs_out_parser, task_results, save_figure  # noqa: E402

COLOURS = {"slr": "tab:red", "admm": "tab:blue"}


def retrain_curve(result: dict[str, Any]) -> tuple[list[int], list[float]]:
    """(epochs, mAP50): epoch 0 is the hard-pruned model, then one point per retraining epoch."""
    key = result["primary_metric"]
    xs, ys = [0], [float(result["metrics"]["after_hard_pruning"][key])]
    for row in result["history"]:
        if row["stage"] == "retrain" and row.get("metrics"):
            xs.append(row["epoch"] + 1)
            ys.append(float(row["metrics"][key]))
    return xs, ys


def figure4(results: list[dict[str, Any]], rate: float = 2.0):
    runs = [r for r in results if r["model"] == "yolov3-tiny" and abs(float(r["target_compression"]) - rate) < 1e-6
            and any(row["stage"] == "retrain" for row in r["history"])]
    if not runs:
        raise DataError(f"no YOLOv3-tiny {rate:g}x run with retraining epochs; run `make detection-yolo` first")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in sorted(runs, key=lambda r: (r["method"], r["seed"])):
        xs, ys = retrain_curve(r)
        ax.plot(xs, ys, marker="o", color=COLOURS.get(r["method"]), label=f"{r['method'].upper()} (seed {r['seed']})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("retraining epoch (0 = hard-pruned)")
    ax.set_ylabel("mAP@0.5 (%)")
    ax.set_title(f"YOLOv3-tiny, {rate:g}x: masked retraining ({runs[0]['dataset']}, {runs[0]['profile']})")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = runs_out_parser(__doc__, out_help="folder for the PNG and PDF files").parse_args(argv)
    results = task_results(args.runs, "detection_yolo", "fig4-yolo")
    written = save_figure(figure4(results), args.out, "fig4_yolo_retrain")
    print("written: " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
