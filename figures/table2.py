"""Table 2: SLR vs ADMM on YOLOv3-tiny and YOLOv3-SPP (mAP50 after training and after
hard-pruning), ours from results files beside the paper's.

    python -m figures.table2 --runs runs/smoke/detection_yolo --out runs/smoke/figures
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from core.errors import exit_on_user_error
from figures.common import RATE_COLUMNS, achieved_rate, runs_out_parser, task_results, mean_std, metric, paper_numbers, write_table

COLUMNS = ["Model", "Epochs", "Rate", "Method", "Dense mAP", "After training", "After hard-pruning", "After retraining",
           *RATE_COLUMNS, "Paper: original", "Paper: after training", "Paper: after hard-pruning"]
MODEL_LABELS = {"yolov3-tiny": "YOLOv3-tiny", "yolov3-spp": "YOLOv3-SPP", "yolov3": "YOLOv3"}


def _paper_row(paper: dict[str, Any], model: str, rate: float, method: str) -> dict[str, Any] | None:
    for row in paper["rows"]:
        if row["model"] == model and abs(row["rate"] - rate) < 1e-6 and row["method"] == method:
            return row
    return None


def table2_rows(results: list[dict[str, Any]], paper: dict[str, Any]) -> list[list[str]]:
    """One row per (model, rate, method): our mean ± std over seeds, then the paper's numbers."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["model"], float(r["target_compression"]), r["method"])].append(r)
    order = {"admm": 0, "slr": 1}
    rows = []
    for (model, rate, method) in sorted(groups, key=lambda k: (k[0] != "yolov3-tiny", k[0], k[1], order.get(k[2], 9))):
        runs = groups[(model, rate, method)]
        epochs = runs[0]["config"]["recipe"]["epochs"]
        retrain = runs[0]["config"]["recipe"]["retrain_epochs"]
        ref = _paper_row(paper, model, rate, method) or {}
        rows.append([
            MODEL_LABELS.get(model, model), str(epochs), f"{rate:g}×", method.upper(),
            mean_std([metric(r, "dense") for r in runs], 1),
            mean_std([metric(r, "after_training") for r in runs], 1),
            mean_std([metric(r, "after_hard_pruning") for r in runs], 1),
            mean_std([metric(r, "after_retraining") for r in runs], 1) + (f" ({retrain} ep)" if retrain else " (none)"),
            achieved_rate(runs, "pruned_layers", 3), achieved_rate(runs, "whole_model", 3),
            _fmt(ref.get("original")), _fmt(ref.get("after_training")), _fmt(ref.get("after_hard_pruning")),
        ])
    return rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = runs_out_parser(__doc__, out_help="folder for table2.md and table2.tex").parse_args(argv)
    results = task_results(args.runs, "detection_yolo", "table2")
    paper = paper_numbers("table2")
    profile = ", ".join(sorted({r["profile"] for r in results}))
    datasets = ", ".join(sorted({r["dataset"] for r in results}))
    caption = (f"Table 2: SLR vs ADMM on YOLOv3 (mAP50 %, ours: profile {profile}, data {datasets}, "
               f"mean ± std over seeds) beside the paper's numbers (COCO 2014, 640 px)")
    path = write_table(args.out, "table2", COLUMNS, table2_rows(results, paper), caption)
    print(path.read_text())
    print(f"written: {path} and {path.with_suffix('.tex')}")


if __name__ == "__main__":
    main()
