"""Table 4: UFLD on TuSimple, SLR vs ADMM at 1.82x, 2.54x and 4.21x, beside the paper's numbers.

    python -m figures.table4 --runs runs/smoke/lane_tusimple --out runs/smoke/figures

Reads the ``results.json`` files of ``python -m lane_tusimple`` only; writes ``table4.md`` and
``table4.tex``. Accuracy is the official TuSimple accuracy (%) after SLR/ADMM training, after
hard-pruning and after masked retraining; several seeds give mean ± std.
"""
from __future__ import annotations

from pathlib import Path

from core.errors import exit_on_user_error

from .common import RATE_COLUMNS, achieved_rate, runs_out_parser, task_results, mean_std, metric, paper_numbers, write_table

STAGES = ("after_training", "after_hard_pruning", "after_retraining")
COLUMNS = ["Rate", "Method", "Ours: trained", "Ours: hard-pruned", "Ours: retrained", *RATE_COLUMNS, "Dense (ours)",
           "Paper: trained", "Paper: hard-pruned", "Paper: retrained"]


def table4_rows(results: list[dict], paper: dict) -> list[list[str]]:
    """One row per (rate, method): our numbers (mean ± std over seeds) and the paper's."""
    paper_by_key = {(float(r["rate"]), r["method"]): r for r in paper["rows"]}
    groups: dict[tuple[float, str], list[dict]] = {}
    for r in results:
        groups.setdefault((float(r["target_compression"]), r["method"]), []).append(r)
    keys = sorted(set(groups) | set(paper_by_key), key=lambda k: (k[0], k[1] != "admm"))
    rows = []
    for rate, method in keys:
        runs = groups.get((rate, method), [])
        ours = [mean_std([metric(r, stage) for r in runs]) for stage in STAGES]
        dense = mean_std([metric(r, "dense") for r in runs])
        p = paper_by_key.get((rate, method))
        theirs = [f"{p[stage]:.2f}" if p else "-" for stage in STAGES]
        rows.append([f"{rate:g}×", method.upper(), *ours, achieved_rate(runs, "pruned_layers"), achieved_rate(runs, "whole_model"), dense, *theirs])
    return rows


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    args = runs_out_parser(__doc__, out_help="folder for table4.md and table4.tex").parse_args(argv)
    results = task_results(args.runs, "lane_tusimple", "table4")
    profiles = sorted({r["profile"] for r in results})
    datasets = sorted({r["dataset"] for r in results})
    models = sorted({r["model"] for r in results})
    caption = (f"Table 4: TuSimple accuracy (%) of {', '.join(models)} on {', '.join(datasets)} (profile {', '.join(profiles)}); "
               "ours from results files, the paper's (UFLD ResNet-18, real TuSimple, 40 + 3 epochs) labelled Paper")
    path = write_table(args.out, "table4", COLUMNS, table4_rows(results, paper_numbers("table4")), caption)
    print(path.read_text())
    return path


if __name__ == "__main__":
    main()
