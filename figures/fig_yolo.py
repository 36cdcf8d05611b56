"""Figure 4 (mAP during masked retraining after 2x pruning of YOLOv3-tiny, SLR vs ADMM) and the
YOLOv3-tiny weight heatmaps of Figures 17 (before pruning, after SLR training, after
hard-pruning) and 23 (after SLR vs after ADMM training), from detection_yolo results files.

    python -m figures.fig_yolo --runs runs/smoke/detection_yolo --out runs/smoke/figures
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import torch  # noqa: E402

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


def _heatmap_grid(rows: list[tuple[str, dict[str, torch.Tensor]]], title: str):
    layers = list(rows[0][1])
    fig, axes = plt.subplots(len(rows), len(layers), figsize=(2.4 * len(layers), 2.4 * len(rows)), squeeze=False)
    for i, (label, snap) in enumerate(rows):
        for j, name in enumerate(layers):
            image = snap[name].float()
            vmax = float(max(s[name].float().max() for _, s in rows)) or 1.0
            ax = axes[i][j]
            ax.imshow(image.numpy(), cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name.replace(".weight", ""), fontsize=7)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _snapshots(result: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    path = result.get("heatmaps")
    if not path or not Path(path).is_file():
        raise DataError(f"run {result['method']} {result['model']} has no weight snapshots ({path}); rerun it with this version")
    return torch.load(path, map_location="cpu")


def heatmap_figures(results: list[dict[str, Any]]):
    """Figures 17 and 23 from the YOLOv3-tiny runs at the highest rate that has both methods."""
    tiny = [r for r in results if r["model"] == "yolov3-tiny" and r.get("heatmaps")]
    rates = sorted({float(r["target_compression"]) for r in tiny if r["method"] == "slr"}
                   & {float(r["target_compression"]) for r in tiny if r["method"] == "admm"})
    if not rates:
        raise DataError("no YOLOv3-tiny SLR and ADMM runs with weight snapshots; run `make detection-yolo` first")
    rate = rates[-1]
    pick = {r["method"]: r for r in sorted(tiny, key=lambda r: -r["seed"]) if float(r["target_compression"]) == rate}
    slr, admm = _snapshots(pick["slr"]), _snapshots(pick["admm"])
    fig17 = _heatmap_grid([("before pruning", slr["dense"]), ("after SLR training", slr["after_training"]),
                           ("after hard-pruning", slr["after_hard_pruning"])],
                          f"YOLOv3-tiny |W| (top-left 64x64 of out x in*k*k), SLR {rate:g}x")
    fig23 = _heatmap_grid([("after SLR training", slr["after_training"]), ("after ADMM training", admm["after_training"])],
                          f"YOLOv3-tiny |W| after training, SLR vs ADMM {rate:g}x")
    return fig17, fig23


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = runs_out_parser(__doc__, out_help="folder for the PNG and PDF files").parse_args(argv)
    results = task_results(args.runs, "detection_yolo", "fig4-yolo")
    written = save_figure(figure4(results), args.out, "fig4_yolo_retrain")
    fig17, fig23 = heatmap_figures(results)
    written += save_figure(fig17, args.out, "fig17_yolo_heatmap_slr") + save_figure(fig23, args.out, "fig23_yolo_heatmap_slr_admm")
    print("written: " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
