"""Table 3 (PointPillars on KITTI, SLR vs ADMM) and Figure 3 (mAP after hard-pruning) from results files.

    python -m figures.table3 --runs runs/smoke/pointpillars_kitti --out runs/smoke/figures

Writes ``table3.md/.tex`` (ours beside the paper's numbers, mAP at IoU 0.5, 3D, R11),
``table3_official.md/.tex`` (the official thresholds Car 0.7 / Pedestrian, Cyclist 0.5, 3D, BEV
and 2D, R11 and R40, with AOS beside the 2D AP) and ``figure3.png/.pdf``.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from core.errors import exit_on_user_error

from .common import achieved_rate, runs_out_parser, task_results, mean_std, paper_numbers, save_figure, write_table

DIFFICULTIES = ("easy", "moderate", "hard")
STAGES = ("after_hard_pruning", "after_retraining")
COLUMNS = ["Level", "Original mAP", "Compression", "ADMM hard-pruned", "ADMM retrained", "SLR hard-pruned", "SLR retrained",
           "Achieved rate (ADMM / SLR)", "Whole-model rate (ADMM / SLR)"]
OFFICIAL_METRICS = {"3d": "3D", "bev": "BEV", "bbox": "2D", "aos": "AOS"}  # AOS: orientation similarity of the 2D matches


def _value(result: dict, stage: str, key: str) -> float | None:
    value = result["metrics"].get(stage, {}).get(key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if value != value else value  # NaN: no valid ground truth


def _group(results: list[dict]) -> dict[tuple[str, float], list[dict]]:
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for r in results:
        groups[(r["method"], round(float(r["target_compression"]), 3))].append(r)
    return groups


def _paper_cell(paper: dict, diff: str, rate: float, method: str, stage: int) -> str:
    rows = paper["rows"][diff]
    for key, methods in rows.items():
        if abs(float(key) - rate) < 1e-3:
            return f"{methods[method][stage]:.1f}"
    return "-"


def _rates(runs_by_method: dict[str, list[dict]], which: str) -> str:
    """``ADMM / SLR`` achieved rate (``pruned_layers`` or ``whole_model``) of one target rate's runs."""
    return " / ".join(achieved_rate(runs_by_method.get(m, []), which, 3) for m in ("admm", "slr"))


def table3_rows(results: list[dict], metric: str) -> list[list[str]]:
    """Rows: difficulty, dense mAP (ours / paper), rate, then ADMM and SLR after hard-pruning and
    retraining, then the achieved pruned-layer and whole-model rates (ADMM / SLR)."""
    paper = paper_numbers("table3")
    groups = _group(results)
    rates = sorted({rate for _, rate in groups})
    rows = []
    for diff in DIFFICULTIES:
        key = f"{metric}_mAP_{diff}"
        per_seed = {r["seed"]: _value(r, "dense", key) for r in results}  # every run of a seed starts from one dense model
        dense = mean_std(list(per_seed.values()), 1)
        for i, rate in enumerate(rates):
            row = [diff.capitalize() if i == 0 else "", f"{dense} ({paper['original'][diff]:.1f})" if i == 0 else "", f"{rate:g}x"]
            for method in ("admm", "slr"):
                for s, stage in enumerate(STAGES):
                    ours = mean_std([_value(r, stage, key) for r in groups.get((method, rate), [])], 1)
                    row.append(f"{ours} ({_paper_cell(paper, diff, rate, method, s)})")
            by_method = {m: groups.get((m, rate), []) for m in ("admm", "slr")}
            row += [_rates(by_method, "pruned_layers"), _rates(by_method, "whole_model")]
            rows.append(row)
    return rows


def official_rows(results: list[dict]) -> list[list[str]]:
    """Per method and rate: moderate mAP with the official thresholds, after retraining, for every metric (and AOS)."""
    rows = []
    for (method, rate), runs in sorted(_group(results).items()):
        row = [method.upper(), f"{rate:g}x"]
        for metric in OFFICIAL_METRICS:
            for interp in ("R11", "R40"):
                row.append(mean_std([_value(r, "after_retraining", f"{metric}_official_{interp}_mAP_moderate") for r in runs], 1))
        rows.append(row)
    return rows


def draw_figure3(results: list[dict], metric: str, out: Path) -> list[Path]:
    """Figure 3 (drawn by :func:`figures.fig_kitti.figure3`, with the paper's Table 3 beside ours) as PNG and PDF."""
    import matplotlib.pyplot as plt

    from .fig_kitti import figure3

    fig = figure3(results, metric)
    paths = save_figure(fig, out, "figure3")
    plt.close(fig)
    return paths


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = runs_out_parser(__doc__, runs=Path("runs/smoke/pointpillars_kitti"), out=Path("runs/smoke/figures"))
    parser.add_argument("--metric", default="3d_iou05_R11", help="prefix of the mAP keys: <3d|bev|bbox|aos>_<iou05|official|loose>_<R11|R40>")
    args = parser.parse_args(argv)
    results = task_results(args.runs, "pointpillars_kitti", "kitti")
    profile = results[0]["profile"]
    caption = (f"Table 3: PointPillars on KITTI ({results[0]['dataset']}, profile {profile}); {args.metric} mAP (%), "
               "ours (paper's number in parentheses); achieved rates measured on the pruned layers and on the whole model")
    path = write_table(args.out, "table3", COLUMNS, table3_rows(results, args.metric), caption)
    official_cols = ["Method", "Compression"] + [f"{m} {i}" for m in OFFICIAL_METRICS.values() for i in ("R11", "R40")]
    write_table(args.out, "table3_official", official_cols, official_rows(results),
                "PointPillars on KITTI after retraining, moderate mAP (%) at the official IoU (Car 0.7, Ped./Cyc. 0.5)")
    draw_figure3(results, args.metric, args.out)
    print(path.read_text())
    print(f"written: {args.out}/table3.md, table3_official.md (and .tex), figure3.png/.pdf")


if __name__ == "__main__":
    main()
