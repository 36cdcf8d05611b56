"""The weight heatmaps of the paper's appendix, Figures 13-24, from results files and the weight
snapshots each run writes beside them (``heatmaps.pt``, see :mod:`core.harness.snapshots`).

Figures 13-18: one model pruned with SLR, |W| before pruning, after SLR training and after
hard-pruning. Figures 19-24: the same layers after SLR training and after ADMM training.

    python -m figures.heatmaps 13 19 --runs runs/smoke/classification/table1 --out runs/smoke/figures
    python -m figures.heatmaps 17 23 --runs runs/smoke/detection_yolo --out runs/smoke/figures

Each figure uses the highest compression rate that has both an SLR and an ADMM run of its
model (the lowest seed of each), so that 13-18 and 19-24 show the same runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from core.harness.cli import ArgumentParser  # noqa: E402
from core.errors import DataError, exit_on_user_error  # noqa: E402
from figures.common import collect_results, save_figure  # noqa: E402

__all__ = ["HEATMAP_FIGURES", "HeatmapFigure", "select_pair", "load_snapshots", "heatmap_grid", "draw"]


class HeatmapFigure(NamedTuple):
    """Which runs a heatmap figure draws: ``model`` matches a results file's classification
    experiment (e.g. ``r18_cifar``) or its ``model`` field."""

    model: str
    caption: str
    compare: bool  # False: SLR stages (13-18); True: SLR vs ADMM (19-24)


_MODELS = [("r18_cifar", "ResNet-18, CIFAR-10"), ("r50_cifar", "ResNet-50, CIFAR-10"), ("r18_imagenet", "ResNet-18, ImageNet"),
           ("r50_imagenet", "ResNet-50, ImageNet"), ("yolov3-tiny", "YOLOv3-tiny, COCO"), ("pointpillars", "PointPillars, KITTI")]
HEATMAP_FIGURES: dict[int, HeatmapFigure] = {
    **{13 + i: HeatmapFigure(model, caption, False) for i, (model, caption) in enumerate(_MODELS)},
    **{19 + i: HeatmapFigure(model, caption, True) for i, (model, caption) in enumerate(_MODELS)},
}


def _model_keys(result: dict[str, Any]) -> set[str]:
    keys = {result["model"]}
    experiment = (result.get("config", {}).get("task") or {}).get("experiment")
    if experiment:
        keys.add(experiment)
    return keys


def select_pair(results: Sequence[dict[str, Any]], model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(SLR run, ADMM run) of ``model`` with weight snapshots, at the highest rate both methods have."""
    runs = [r for r in results if model in _model_keys(r) and r.get("heatmaps") and r.get("target_compression")]
    rates = {m: {float(r["target_compression"]) for r in runs if r["method"] == m} for m in ("slr", "admm")}
    common = sorted(rates["slr"] & rates["admm"])
    if not common:
        raise DataError(f"no SLR and ADMM runs of {model} at the same rate with weight snapshots; "
                        "run its table with this version first")
    pick: dict[str, dict[str, Any]] = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        if float(r["target_compression"]) == common[-1]:
            pick.setdefault(r["method"], r)
    return pick["slr"], pick["admm"]


def load_snapshots(result: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """``{stage: {layer: |W| block}}`` of a run; its ``heatmaps`` path is relative to the results file."""
    path = Path(result["heatmaps"])
    if not path.is_absolute() and result.get("_path"):
        path = Path(result["_path"]).parent / path
    if not path.is_file():
        raise DataError(f"weight snapshots {path} of run {result['method']} {result['model']} are missing; rerun the run")
    return torch.load(path, map_location="cpu")


def heatmap_grid(rows: Sequence[tuple[str, dict[str, torch.Tensor]]], title: str):
    """One row per (label, snapshot) and one column per layer, on a colour scale shared by each column."""
    layers = list(rows[0][1])
    fig, axes = plt.subplots(len(rows), len(layers), figsize=(2.4 * len(layers), 2.4 * len(rows)), squeeze=False)
    for j, name in enumerate(layers):
        vmax = float(max(snap[name].float().max() for _, snap in rows)) or 1.0
        for i, (label, snap) in enumerate(rows):
            ax = axes[i][j]
            ax.imshow(snap[name].float().numpy(), cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest", aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name.removesuffix(".weight"), fontsize=7)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def draw(number: int, results: Sequence[dict[str, Any]]):
    """Figure ``number`` (13-24) from ``results``."""
    if number not in HEATMAP_FIGURES:
        raise DataError(f"no heatmap figure {number}; choose from {min(HEATMAP_FIGURES)}-{max(HEATMAP_FIGURES)}")
    spec = HEATMAP_FIGURES[number]
    slr_run, admm_run = select_pair(results, spec.model)
    slr = load_snapshots(slr_run)
    rate = f"{float(slr_run['target_compression']):g}x"
    where = f"{slr_run['dataset']}, profile {slr_run['profile']}"
    if spec.compare:
        admm = load_snapshots(admm_run)
        rows = [("after SLR training", slr["after_training"]), ("after ADMM training", admm["after_training"])]
        title = f"Figure {number}: |W| of {spec.caption} after SLR and ADMM training, {rate} ({where})"
    else:
        rows = [("before pruning", slr["dense"]), ("after SLR training", slr["after_training"]),
                ("after hard-pruning", slr["after_hard_pruning"])]
        title = f"Figure {number}: |W| of {spec.caption}, SLR {rate} ({where})"
    return heatmap_grid(rows, title + "; top-left 64x64 of out x in*k*k")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figures", nargs="+", type=int, help="figure numbers, 13-24")
    parser.add_argument("--runs", type=Path, required=True, help="folder with the runs' results files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG and PDF files")
    parser.add_argument("--suffix", default="", help="appended to the file names, e.g. _cpu")
    args = parser.parse_args(argv)
    results = collect_results(args.runs)
    for number in args.figures:
        fig = draw(number, results)
        spec = HEATMAP_FIGURES[number]
        paths = save_figure(fig, args.out, f"fig{number}_heatmap_{spec.model}{'_slr_admm' if spec.compare else '_slr'}{args.suffix}")
        plt.close(fig)
        print(f"written: {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    main()
