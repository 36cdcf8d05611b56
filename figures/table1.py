"""Table 1: SLR vs ADMM on CIFAR-10 (ResNet-18, ResNet-50, VGG-16) and ImageNet (ResNet-18,
ResNet-50), ours from results files beside the paper's numbers.

    python -m figures.table1 --runs runs/smoke/classification/table1 --out runs/smoke/figures

The helpers here also draw Tables 7 and 8, which have the same columns.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from core.harness.cli import ArgumentParser
from core.errors import exit_on_user_error
from figures.common import RATE_COLUMNS, achieved_rate, task_results, mean_std, metric, paper_numbers, write_table

__all__ = ["COLUMNS", "STAGES", "experiment_of", "comparison_rows", "classification_results", "run_comparison_table"]

STAGES = ("after_training", "after_hard_pruning", "after_retraining")
COLUMNS = ["Data set", "Model", "Rate", "Method", "Metric", "Dense", "After training", "After hard-pruning",
           "After retraining", *RATE_COLUMNS, "Seeds",
           "Paper: dense", "Paper: after training", "Paper: after hard-pruning", "Paper: after retraining"]
_EXPERIMENT_LABELS = {"r18_cifar": ("CIFAR-10", "ResNet-18"), "r50_cifar": ("CIFAR-10", "ResNet-50"),
                      "vgg16_cifar": ("CIFAR-10", "VGG-16"), "r18_imagenet": ("ImageNet", "ResNet-18"),
                      "r50_imagenet": ("ImageNet", "ResNet-50")}
_METHOD_ORDER = {"admm": 0, "slr": 1}


def experiment_of(result: dict[str, Any]) -> str:
    """The table experiment a results file belongs to (e.g. ``r18_cifar``)."""
    return result["config"]["task"].get("experiment", f"{result['model']}_{result['dataset']}")


def classification_results(runs: Path, table: str) -> list[dict[str, Any]]:
    """Every classification results file under ``runs``; a clear error when there is none."""
    return task_results(runs, "classification", table)


def _paper_row(paper: dict[str, Any], experiment: str, rate: float, method: str) -> dict[str, Any]:
    for row in paper.get("rows", []):
        if row["experiment"] == experiment and abs(row["rate"] - rate) < 1e-6 and row["method"] == method:
            return row
    return {}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def comparison_rows(results: Sequence[dict[str, Any]], paper: dict[str, Any], experiments: Sequence[str] | None = None) -> list[list[str]]:
    """One row per (experiment, rate, method): our mean ± std over seeds, then the paper's numbers."""
    groups: dict[tuple[str, float, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(experiment_of(r), float(r["target_compression"]), r["method"])].append(r)
    order = list(experiments or _EXPERIMENT_LABELS)
    keys = sorted(groups, key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1], _METHOD_ORDER.get(k[2], 9)))
    rows = []
    for experiment, rate, method in keys:
        runs = groups[(experiment, rate, method)]
        dataset, model = _EXPERIMENT_LABELS.get(experiment, (runs[0]["dataset"], runs[0]["model"]))
        ref = _paper_row(paper, experiment, rate, method)
        data_label = dataset if runs[0]["dataset"] in ("cifar10", "imagenet") else f"{dataset} [{runs[0]['dataset']}]"
        rows.append([
            data_label, model, f"{rate:g}×", method.upper(), runs[0]["primary_metric"],
            mean_std([metric(r, "dense") for r in runs]),
            *(mean_std([metric(r, stage) for r in runs]) for stage in STAGES),
            achieved_rate(runs, "pruned_layers"), achieved_rate(runs, "whole_model"),
            str(len(runs)),
            _fmt(ref.get("dense")), *(_fmt(ref.get(stage)) for stage in STAGES),
        ])
    return rows


def run_comparison_table(argv: list[str] | None, table: str, title: str) -> Path:
    """Command line shared by Tables 1, 7 and 8: read results, write ``<table>.md/.tex``, print it."""
    parser = ArgumentParser(description=title)
    parser.add_argument("--runs", type=Path, required=True, help=f"folder with the {table} results files")
    parser.add_argument("--out", type=Path, required=True, help=f"folder for {table}.md and {table}.tex")
    parser.add_argument("--name", default=table, help="output file name (default: the table's)")
    args = parser.parse_args(argv)
    results = classification_results(args.runs, table)
    paper = paper_numbers(table)
    profiles = ", ".join(sorted({r["profile"] for r in results}))
    caption = (f"{title} Ours (profile {profiles}; mean ± std over seeds; accuracy %) beside the paper's numbers "
               f"({paper['source']}). Rows whose data set is marked [sklearn-digits] are the smoke profile's stand-in data.")
    path = write_table(args.out, args.name, COLUMNS, comparison_rows(results, paper), caption)
    print(path.read_text())
    print(f"written: {path} and {path.with_suffix('.tex')}")
    return path


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    run_comparison_table(argv, "table1", "Table 1: SLR vs ADMM on CIFAR-10 (top-1) and ImageNet (top-5).")


if __name__ == "__main__":
    main()
