"""The peers table: SLR and ADMM beside NNI's ADMMPruner, one-shot global magnitude and gradual
magnitude pruning, each followed by the same masked retraining; accuracy after each stage and
wall time, mean ± std over seeds, from results files only.

    python -m figures.peers --runs runs/smoke/classification/peers --out runs/smoke/figures
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from core.errors import DataError, exit_on_user_error
from figures.common import RATE_COLUMNS, achieved_rate, collect_results, mean_std, metric, runs_out_parser, write_table

__all__ = ["COLUMNS", "METHOD_LABELS", "peer_rows", "run_peers_table"]

METHOD_LABELS = {
    "slr": "SLR",
    "admm": "ADMM (ours)",
    "nni_admm": "NNI 2.10.1 ADMMPruner (+ PyTorch-2 shim)",
    "nni_admm_raw": "NNI 2.10.1 ADMMPruner (as shipped)",
    "magnitude": "Global magnitude, one-shot (torch.nn.utils.prune)",
    "gmp": "Gradual magnitude (Zhu & Gupta)",
}
COLUMNS = ["Model", "Data set", "Rate", "Method", "Dense", "After pruning epochs", "After hard-pruning", "After retraining",
           *RATE_COLUMNS, "Pruning stage (s)", "Wall time (s)", "Seeds"]


def _stage_time(result: dict[str, Any], stage: str) -> float | None:
    value = (result.get("stage_wall_time_s") or {}).get(stage)
    return None if value is None else float(value)


def peer_rows(results: Sequence[dict[str, Any]]) -> list[list[str]]:
    """One row per (model, data set, rate, method): accuracy (primary metric) after each stage and
    wall times, mean ± std over seeds; methods in the order of :data:`METHOD_LABELS`."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["model"], r["dataset"], float(r["target_compression"] or 0.0), r["method"])].append(r)
    order = list(METHOD_LABELS)
    keys = sorted(groups, key=lambda k: (k[0], k[1], k[2], order.index(k[3]) if k[3] in order else len(order), k[3]))
    rows = []
    for model, dataset, rate, method in keys:
        runs = groups[(model, dataset, rate, method)]
        times = [_stage_time(r, "prune") for r in runs]
        rows.append([
            model, dataset, f"{rate:g}×", METHOD_LABELS.get(method, method),
            *(mean_std([metric(r, stage) for r in runs]) for stage in ("dense", "after_training", "after_hard_pruning", "after_retraining")),
            achieved_rate(runs, "pruned_layers"), achieved_rate(runs, "whole_model"),
            mean_std([t for t in times if t is not None], digits=0),
            mean_std([float(r["wall_time_s"]) for r in runs], digits=0),
            str(len(runs)),
        ])
    return rows


def run_peers_table(argv: list[str] | None = None) -> Path:
    parser = runs_out_parser(__doc__, runs_help="folder with the peers runs' results files", out_help="folder for peers.md and peers.tex")
    parser.add_argument("--name", default="peers", help="output file name (default: peers)")
    args = parser.parse_args(argv)
    results = collect_results(args.runs)  # any task's runs: the table groups by model and data set
    if not results:
        raise DataError(f"no results under {args.runs}; run `make peers` (python -m classification --table peers) first")
    metric_name = ", ".join(sorted({r["primary_metric"] for r in results}))
    profiles = ", ".join(sorted({r["profile"] for r in results}))
    caption = (f"Peers on the same model, data, epochs and compression, each followed by the same masked retraining "
               f"(profile {profiles}; {metric_name} %, mean ± std over seeds). 'After pruning epochs' is the end of the "
               f"pruning stage (SLR/ADMM/NNI training, plain training before one-shot magnitude pruning, gradual pruning); "
               f"the pruning stage time includes hard-pruning and the per-epoch evaluations; wall time is the whole run.")
    path = write_table(args.out, args.name, COLUMNS, peer_rows(results), caption)
    print(path.read_text())
    print(f"written: {path} and {path.with_suffix('.tex')}")
    return path


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    run_peers_table(argv)


if __name__ == "__main__":
    main()
