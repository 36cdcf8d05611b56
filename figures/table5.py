"""Table 5: SLR on CIFAR-10 ResNet-18 at 1.96x for rho in {0.1, 0.01} and s0 in {1e-2 .. 1e-5},
ours beside the paper's.

    python -m figures.table5 --runs runs/smoke/classification/table5 --out runs/smoke/figures
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from core.harness.cli import ArgumentParser
from core.errors import exit_on_user_error
from figures.common import RATE_COLUMNS, achieved_rate, mean_std, metric, paper_numbers, write_table
from figures.table1 import STAGES, classification_results

__all__ = ["ablation_rows", "run_ablation_table"]

_LABELS = {"after_training": "After training", "after_hard_pruning": "After hard-pruning", "after_retraining": "After retraining"}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 + 1e-6 * abs(b)


def ablation_rows(results: Sequence[dict[str, Any]], paper: dict[str, Any], keys: Sequence[str], descending: bool = False) -> list[list[str]]:
    """One row per setting of ``keys`` (e.g. rho, s0) among our SLR runs: ours (mean ± std over
    seeds) for each stage, then the paper's cell for the same setting; sorted like the paper's table."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r["method"] == "slr":
            groups[tuple(float(r["config"]["recipe"][k]) for k in keys)].append(r)
    rows = []
    for setting in sorted(groups, reverse=descending):
        runs = groups[setting]
        cell = next((c["values"] for c in paper["cells"] if all(_close(float(c[k]), v) for k, v in zip(keys, setting))), None)
        rows.append([*(f"{v:g}" for v in setting), mean_std([metric(r, "dense") for r in runs]),
                     *(mean_std([metric(r, s) for r in runs]) for s in STAGES),
                     achieved_rate(runs, "pruned_layers"), achieved_rate(runs, "whole_model"), str(len(runs)),
                     *(("-",) * 3 if cell is None else (f"{v:.2f}" for v in cell))])
    return rows


def run_ablation_table(argv: list[str] | None, table: str, keys: Sequence[str], title: str, descending: bool = False) -> Path:
    """Command line shared by Tables 5 and 6."""
    parser = ArgumentParser(description=title)
    parser.add_argument("--runs", type=Path, required=True, help=f"folder with the {table} results files")
    parser.add_argument("--out", type=Path, required=True, help=f"folder for {table}.md and {table}.tex")
    args = parser.parse_args(argv)
    results = classification_results(args.runs, table)
    paper = paper_numbers(table)
    columns = [*keys, "Dense", *(_LABELS[s] for s in STAGES), *RATE_COLUMNS, "Seeds", *(f"Paper: {_LABELS[s].lower()}" for s in STAGES)]
    profiles = ", ".join(sorted({r["profile"] for r in results}))
    datasets = ", ".join(sorted({r["dataset"] for r in results}))
    caption = (f"{title} Ours (profile {profiles}, data {datasets}; top-1 %, mean ± std over seeds) beside the paper's "
               f"numbers ({paper['source']}, CIFAR-10, {paper['rate']}×).")
    path = write_table(args.out, table, columns, ablation_rows(results, paper, keys, descending), caption)
    print(path.read_text())
    print(f"written: {path} and {path.with_suffix('.tex')}")
    return path


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    run_ablation_table(argv, "table5", ("rho", "s0"), "Table 5: SLR on ResNet-18 with different rho and initial step sizes s0.",
                       descending=True)


if __name__ == "__main__":
    main()
