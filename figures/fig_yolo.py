"""Figure 4: mAP during masked retraining after 2x pruning of YOLOv3-tiny, SLR vs ADMM, from
detection_yolo results files. (Its heatmaps, Figures 17 and 23, are drawn by figures.heatmaps.)

    python -m figures.fig_yolo --runs runs/smoke/detection_yolo --out runs/smoke/figures

The paper's overlay (see ``figures/paper_numbers/figures.yaml``): the paper prints no mAP for any
retraining epoch of its Figure 4, so no paper curve is drawn. What it does state is overlaid, labelled
"paper": Table 2's after-hard-pruning mAP50 of YOLOv3-tiny at the drawn rate (ADMM 30.6, SLR 33.5 at
2x) as markers at epoch 0, Table 2's original mAP50 (37.1) as a dotted line, and, at 2x, the two
epochs Section 4.3.2 names (SLR peaks at retraining epoch 3; ADMM catches up by epoch 10) as vertical
dotted lines. The peak's mAP is not given, so it is not drawn. The paper's numbers are COCO 2014
mAP50 at 640 px: they compare with ours only on that data.
"""
from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from core.errors import DataError, exit_on_user_error  # noqa: E402
from figures.common import paper_numbers, runs_out_parser, task_results, save_figure  # noqa: E402

COLOURS = {"slr": "tab:red", "admm": "tab:blue"}


def paper_yolo() -> dict[str, Any]:
    """The paper's Table 2 with Figure 4's overlay settings (the epochs its text names) under ``figure4``."""
    return {**paper_numbers("table2"), "figure4": paper_numbers("figures")["figure4"]}


def _overlay_paper(ax, paper: dict[str, Any], model: str, rate: float) -> bool:
    """Draw what the paper states for ``model`` at ``rate``; False when its Table 2 has no such row."""
    rows = [row for row in paper["rows"] if row["model"] == model and abs(float(row["rate"]) - rate) < 1e-3]
    for row in sorted(rows, key=lambda row: row["method"]):
        ax.plot([0], [row["after_hard_pruning"]], linestyle="none", marker="X", markersize=10, color=COLOURS.get(row["method"]),
                markeredgecolor="black", label=f"{row['method'].upper()} hard-pruned (paper, Table 2)")
    if rows:
        ax.axhline(rows[0]["original"], color="gray", linestyle=":", label="original (paper, Table 2)")
    spec = paper["figure4"]
    if model == spec["model"] and abs(rate - float(spec["rate"])) < 1e-3:
        ax.axvline(spec["slr_peak_epoch"], color=COLOURS["slr"], linestyle=":", alpha=0.7,
                   label=f"SLR peaks: epoch {spec['slr_peak_epoch']} (paper, Sec. 4.3.2)")
        ax.axvline(spec["admm_catch_up_epoch"], color=COLOURS["admm"], linestyle=":", alpha=0.7,
                   label=f"ADMM catches up: epoch {spec['admm_catch_up_epoch']} (paper, Sec. 4.3.2)")
    return bool(rows)


def retrain_curve(result: dict[str, Any]) -> tuple[list[int], list[float]]:
    """(epochs, mAP50): epoch 0 is the hard-pruned model, then one point per retraining epoch."""
    key = result["primary_metric"]
    xs, ys = [0], [float(result["metrics"]["after_hard_pruning"][key])]
    for row in result["history"]:
        if row["stage"] == "retrain" and row.get("metrics"):
            xs.append(row["epoch"] + 1)
            ys.append(float(row["metrics"][key]))
    return xs, ys


def figure4(results: list[dict[str, Any]], rate: float = 2.0, paper: dict[str, Any] | None = None):
    """Figure 4: mAP50 per masked-retraining epoch of YOLOv3-tiny pruned at ``rate``, one line per run,
    with what the paper states about it (see the module's docstring)."""
    runs = [r for r in results if r["model"] == "yolov3-tiny" and abs(float(r["target_compression"]) - rate) < 1e-6
            and any(row["stage"] == "retrain" for row in r["history"])]
    if not runs:
        raise DataError(f"no YOLOv3-tiny {rate:g}x run with retraining epochs; run `make detection-yolo` first")
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    for r in sorted(runs, key=lambda r: (r["method"], r["seed"])):
        xs, ys = retrain_curve(r)
        ax.plot(xs, ys, marker="o", color=COLOURS.get(r["method"]), label=f"{r['method'].upper()} (ours, seed {r['seed']})")
    overlaid = _overlay_paper(ax, paper_yolo() if paper is None else paper, "yolov3-tiny", rate)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("retraining epoch (0 = hard-pruned)")
    ax.set_ylabel("mAP@0.5 (%)")
    theirs = "X and dotted: paper" if overlaid else f"the paper's Table 2 has no {rate:g}x"
    ax.set_title(f"Figure 4: YOLOv3-tiny mAP50 during masked retraining after {rate:g}x pruning\n"
                 f"(ours: {runs[0]['dataset']}, profile {runs[0]['profile']}; {theirs})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = runs_out_parser(__doc__, out_help="folder for the PNG and PDF files").parse_args(argv)
    results = task_results(args.runs, "detection_yolo", "fig4-yolo")
    written = save_figure(figure4(results), args.out, "fig4_yolo_retrain")
    print("written: " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
