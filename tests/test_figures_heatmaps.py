"""The heatmap figures 13-24: which runs they pick, where they find the snapshots, what they draw."""
import numpy as np
import pytest
import torch
from torch import nn

from core.errors import DataError
from core.harness.results import SCHEMA_VERSION, write_results
from core.harness.snapshots import pick_layers, save_snapshots, weight_snapshot
from figures.common import collect_results
from figures.heatmaps import HEATMAP_FIGURES, draw, main, select_pair

STAGES = ("dense", "after_training", "after_hard_pruning")


def _result(method, rate, seed, model="resnet18", experiment="r18_cifar", heatmaps="heatmaps.pt"):
    metrics = {s: {"top1": 50.0} for s in ("dense", "after_training", "after_hard_pruning", "after_retraining")}
    return {"schema_version": SCHEMA_VERSION, "task": "classification", "model": model, "dataset": "digits", "method": method,
            "profile": "smoke", "seed": seed, "target_compression": rate,
            "achieved_compression": {"pruned_layers": rate, "whole_model": rate}, "primary_metric": "top1",
            "metrics": metrics, "history": [], "per_layer": [], "config": {"task": {"experiment": experiment}},
            "wall_time_s": 1.0, "code_version": "x", **({"heatmaps": heatmaps} if heatmaps else {})}


def _write_run(root, name, result, value):
    """A results file and, beside it, snapshots whose every entry is ``value`` (to tell runs apart)."""
    write_results(root / name / "results.json", result)
    save_snapshots(root / name / "heatmaps.pt", {s: {"a.weight": torch.full((4, 9), value + i, dtype=torch.float16),
                                                     "b.weight": torch.full((3, 6), value, dtype=torch.float16)}
                                                 for i, s in enumerate(STAGES)})


def test_weight_snapshot_is_abs_of_the_flattened_top_left_block():
    conv = nn.Conv2d(3, 70, 3)
    snap = weight_snapshot(nn.Sequential(conv), ["module.0.weight"], size=64)  # prefixes are normalised
    assert snap["0.weight"].shape == (64, 27) and snap["0.weight"].dtype == torch.float16
    assert torch.equal(snap["0.weight"], conv.weight.detach().abs().flatten(1)[:64].half())
    assert pick_layers([f"l{i}" for i in range(9)], 5) == ["l0", "l2", "l4", "l6", "l8"]


def test_pair_is_the_highest_common_rate_and_lowest_seed(tmp_path):
    _write_run(tmp_path, "slr8s1", _result("slr", 8.71, 1), 1.0)
    _write_run(tmp_path, "slr8s0", _result("slr", 8.71, 0), 2.0)
    _write_run(tmp_path, "admm8", _result("admm", 8.71, 0), 3.0)
    _write_run(tmp_path, "slr12", _result("slr", 12.0, 0), 4.0)  # no ADMM run at 12x
    _write_run(tmp_path, "r50", _result("slr", 20.0, 0, model="resnet50", experiment="r50_cifar"), 5.0)
    results = collect_results(tmp_path)
    slr, admm = select_pair(results, "r18_cifar")
    assert (slr["seed"], slr["target_compression"], admm["method"]) == (0, 8.71, "admm")

    fig13 = draw(13, results)  # rows: dense, after training, after hard-pruning; one column per layer
    assert len(fig13.axes) == 6
    assert np.all(fig13.axes[0].images[0].get_array() == 2.0) and np.all(fig13.axes[4].images[0].get_array() == 4.0)
    fig19 = draw(19, results)  # rows: after SLR training, after ADMM training
    assert len(fig19.axes) == 4
    assert np.all(fig19.axes[0].images[0].get_array() == 3.0) and np.all(fig19.axes[2].images[0].get_array() == 4.0)


def test_every_figure_of_the_appendix_is_known():
    assert sorted(HEATMAP_FIGURES) == list(range(13, 25))
    assert [HEATMAP_FIGURES[n].model for n in (17, 18, 23, 24)] == ["yolov3-tiny", "pointpillars"] * 2


def test_missing_runs_or_snapshots_are_user_errors(tmp_path, capsys):
    _write_run(tmp_path, "slr", _result("slr", 2.0, 0), 1.0)
    with pytest.raises(DataError, match="SLR and ADMM"):
        draw(19, collect_results(tmp_path))
    write_results(tmp_path / "admm" / "results.json", _result("admm", 2.0, 0))  # no snapshot file beside it
    with pytest.raises(DataError, match="are missing; rerun"):
        draw(19, collect_results(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        main(["12", "--runs", str(tmp_path), "--out", str(tmp_path / "figs")])
    assert exit_info.value.code == 2 and "choose from 13-24" in capsys.readouterr().err


def test_command_line_writes_png_and_pdf(tmp_path):
    for method, value in (("slr", 1.0), ("admm", 2.0)):
        _write_run(tmp_path / "runs", method, _result(method, 2.0, 0, model="yolov3-tiny", experiment=None), value)
    main(["17", "23", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "figs")])
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == ["fig17_heatmap_yolov3-tiny_slr.pdf", "fig17_heatmap_yolov3-tiny_slr.png",
                     "fig23_heatmap_yolov3-tiny_slr_admm.pdf", "fig23_heatmap_yolov3-tiny_slr_admm.png"]
