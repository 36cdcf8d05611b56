"""Tables and figures drawn as the paper draws them, on small hand-made results files: every table has
the whole-model rate beside the pruned-layer rate, every figure has a title naming the paper's figure,
and Figures 3, 4 and 12 carry the values the paper states (its Tables 2 and 3 and its text), labelled
as the paper's."""
from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from core.harness.results import REQUIRED_KEYS, SCHEMA_VERSION, write_results  # noqa: E402
from core.harness.snapshots import save_snapshots  # noqa: E402
from figures import fig_classification, fig_fidelity, fig_kitti, fig_yolo, heatmaps  # noqa: E402
from figures import peers, table1, table2, table3, table4, table5, table6, table7, table8  # noqa: E402
from figures.common import collect_results, paper_numbers  # noqa: E402

KITTI_DIFFS = ("easy", "moderate", "hard")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _result(task, model, dataset, method, rate, seed, metric, stages, *, whole, history=(), config=None, **extra):
    """A results file's content: ``stages`` = (dense, trained, hard-pruned, retrained) values of ``metric``
    (a number, or a dict of metric keys for KITTI), achieved rates ``rate`` (pruned layers) and ``whole``."""
    def values(v):
        return dict(v) if isinstance(v, dict) else {metric: v}

    data = {k: None for k in REQUIRED_KEYS}
    data.update(schema_version=SCHEMA_VERSION, task=task, model=model, dataset=dataset, method=method, profile="smoke",
                seed=seed, target_compression=rate, primary_metric=metric,
                achieved_compression={"pruned_layers": rate, "whole_model": whole},
                metrics={s: values(v) for s, v in zip(("dense", "after_training", "after_hard_pruning", "after_retraining"), stages)},
                history=list(history), per_layer=[], config=config or {}, wall_time_s=2.0, code_version="test", **extra)
    return data


def _classification(method, rate, seed, stages=(93.0, 88.0, 87.0, 90.0), *, whole, experiment="r18_cifar", dataset="cifar10",
                    metric="top1", rho=0.1, s0=1e-4, M=200, r=0.1, **extra):
    history = [{"stage": "prune", "epoch": e, "loss": 1.0 / (e + 1), "mixed_loss": 2.0 / (e + 1), "violation": 8.0 - e,
                "condition": None if e == 0 else bool(e % 2), "metrics": {metric: stages[1] - 2 + e}} for e in range(3)]
    history += [{"stage": "retrain", "epoch": e, "loss": 0.5, "metrics": {metric: stages[3] - 1 + e}} for e in range(2)]
    config = {"recipe": {"rho": rho, "s0": s0, "M": M, "r": r, "epochs": 3, "retrain_epochs": 2},
              "task": {"experiment": experiment, "table": "t"}}
    return _result("classification", "resnet18", dataset, method, rate, seed, metric, stages, whole=whole, history=history,
                   config=config, stage_wall_time_s={"prune": 1.0}, **extra)


def _write(root, results):
    for i, r in enumerate(results):
        write_results(root / f"run{i}" / "results.json", r)
    return root


def _md(path):
    """(header cells, data rows as cells) of a Markdown table file."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|") and not line.startswith("|---")]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return cells[0], cells[1:]


def _whole_model_beside_achieved(path, achieved="Achieved rate"):
    """Index of the whole-model column, checked to follow the achieved-rate column in the .md and .tex files."""
    header, _ = _md(path)
    i = header.index(achieved)
    assert header[i + 1].startswith("Whole-model rate"), header
    tex = path.with_suffix(".tex").read_text()
    assert "Whole-model rate" in tex and tex.index("Achieved rate") < tex.index("Whole-model rate")
    return i + 1


# Tables ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("module, name", [(table1, "table1"), (table7, "table7"), (table8, "table8")])
def test_comparison_tables_have_the_whole_model_rate(tmp_path, module, name):
    runs = [_classification("slr", 8.71, 0, whole=5.25), _classification("slr", 8.71, 1, whole=5.75),
            _classification("admm", 8.71, 0, whole=6.0)]
    module.main(["--runs", str(_write(tmp_path / "runs", runs)), "--out", str(tmp_path / "out")])
    path = tmp_path / "out" / f"{name}.md"
    col = _whole_model_beside_achieved(path)
    _, rows = _md(path)
    slr = next(row for row in rows if row[3] == "SLR")
    admm = next(row for row in rows if row[3] == "ADMM")
    assert slr[col - 1] == "8.71 ± 0.00×" and slr[col] == "5.50 ± 0.35×"  # mean ± std of 5.25 and 5.75
    assert admm[col] == "6.00×"


@pytest.mark.parametrize("module, name, keys", [(table5, "table5", ("rho", "s0")), (table6, "table6", ("M", "r"))])
def test_ablation_tables_have_the_whole_model_rate(tmp_path, module, name, keys):
    runs = [_classification("slr", 1.96, 0, whole=1.5), _classification("slr", 1.96, 0, whole=1.7, rho=0.01, M=100)]
    module.main(["--runs", str(_write(tmp_path / "runs", runs)), "--out", str(tmp_path / "out")])
    path = tmp_path / "out" / f"{name}.md"
    col = _whole_model_beside_achieved(path)
    _, rows = _md(path)
    assert sorted(row[col] for row in rows) == ["1.50×", "1.70×"] and {row[col - 1] for row in rows} == {"1.96×"}


def _yolo(method, rate, seed, hard, retrain=(), *, whole=1.8, model="yolov3-tiny"):
    history = [{"stage": "prune", "epoch": 0, "loss": 1.0, "metrics": {"mAP50": hard + 1}}]
    history += [{"stage": "retrain", "epoch": i, "loss": 1.0, "metrics": {"mAP50": v}} for i, v in enumerate(retrain)]
    return _result("detection_yolo", model, "coco128", method, rate, seed, "mAP50",
                   (37.0, hard + 1, hard, retrain[-1] if retrain else hard), whole=whole, history=history,
                   config={"recipe": {"epochs": 20, "retrain_epochs": len(retrain)}})


def test_table2_has_the_whole_model_rate(tmp_path):
    runs = [_yolo("slr", 2.0, 0, 30.0, whole=1.875), _yolo("admm", 2.0, 0, 28.0, whole=1.9)]
    table2.main(["--runs", str(_write(tmp_path / "runs", runs)), "--out", str(tmp_path / "out")])
    path = tmp_path / "out" / "table2.md"
    col = _whole_model_beside_achieved(path)
    _, rows = _md(path)
    assert [(row[3], row[col - 1], row[col]) for row in rows] == [("ADMM", "2.000×", "1.900×"), ("SLR", "2.000×", "1.875×")]


def _kitti_stage(value):
    return {f"3d_iou05_R11_mAP_{d}": value + 10 * i for i, d in enumerate(KITTI_DIFFS)}


def _kitti(method, rate, hard, per_epoch=(), *, whole=None, seed=0):
    history = [{"stage": "prune", "epoch": 0, "loss": 1.0, "metrics": _kitti_stage(hard + 1)}]
    history += [{"stage": "retrain", "epoch": e, "loss": 1.0, "metrics": _kitti_stage(v)} for e, v in enumerate(per_epoch)]
    return _result("pointpillars_kitti", "pointpillars", "synthetic-kitti", method, rate, seed, "3d_iou05_R11_mAP_moderate",
                   tuple(_kitti_stage(v) for v in (60.0, hard + 1, hard, per_epoch[-1] if per_epoch else hard)),
                   whole=rate * 0.5 if whole is None else whole, history=history)


def test_table3_has_the_whole_model_rate(tmp_path):
    runs = [_kitti("slr", 9.449, 20.0, whole=7.5), _kitti("admm", 9.449, 10.0, whole=7.0), _kitti("slr", 4.874, 40.0, whole=4.0)]
    table3.main(["--runs", str(_write(tmp_path / "runs", runs)), "--out", str(tmp_path / "out")])
    path = tmp_path / "out" / "table3.md"
    col = _whole_model_beside_achieved(path, "Achieved rate (ADMM / SLR)")
    _, rows = _md(path)
    by_rate = {row[2]: row for row in rows if row[0] == "Easy" or row[0] == ""}
    assert by_rate["9.449x"][col - 1] == "9.449× / 9.449×" and by_rate["9.449x"][col] == "7.000× / 7.500×"
    assert by_rate["4.874x"][col] == "- / 4.000×"  # no ADMM run at 4.874x


def test_table4_has_the_whole_model_rate(tmp_path):
    runs = [_result("lane_tusimple", "ufld", "tusimple-synthetic", m, 4.21, 0, "accuracy", (95.0, 94.0, 93.0, 94.5), whole=w)
            for m, w in (("slr", 3.5), ("admm", 3.25))]
    table4.main(["--runs", str(_write(tmp_path / "runs", runs)), "--out", str(tmp_path / "out")])
    path = tmp_path / "out" / "table4.md"
    col = _whole_model_beside_achieved(path)
    _, rows = _md(path)
    mine = {row[1]: row for row in rows if row[0] == "4.21×"}
    assert (mine["SLR"][col - 1], mine["SLR"][col], mine["ADMM"][col]) == ("4.21×", "3.50×", "3.25×")
    assert next(row for row in rows if row[0] == "1.82×")[col] == "-"  # the paper's rows without a run of ours


def test_peers_table_has_the_whole_model_rate(tmp_path):
    runs = [_classification(m, 4.0, 0, whole=w, dataset="sklearn-digits") for m, w in (("slr", 3.0), ("magnitude", 3.5))]
    peers.main(["--runs", str(_write(tmp_path / "runs", runs)), "--out", str(tmp_path / "out")])
    path = tmp_path / "out" / "peers.md"
    col = _whole_model_beside_achieved(path)
    _, rows = _md(path)
    assert [(row[3].split(" ")[0], row[col - 1], row[col]) for row in rows] == [("SLR", "4.00×", "3.00×"), ("Global", "4.00×", "3.50×")]


# Titles ------------------------------------------------------------------------------------------
def _title(fig) -> str:
    """The figure's title: its suptitle, else the title of its first axes."""
    sup = fig.get_suptitle()
    return sup or fig.axes[0].get_title()


def _check_title(fig, number: int, every_axes: bool = True):
    assert fig is not None and fig.axes
    assert re.match(rf"Figure {number}\b", _title(fig)), _title(fig)  # "Figure 4: ..." or "Figure 1, fidelity study: ..."
    if every_axes:
        assert all(ax.get_title().strip() for ax in fig.axes), [ax.get_title() for ax in fig.axes]


def test_classification_figures_have_titles():
    runs = [_classification(m, rate, s, whole=rate / 2, rho=rho, s0=s0)
            for m in ("slr", "admm") for rate in (1.96, 8.71) for s in (0, 1) for rho, s0 in ((0.1, 1e-4),)]
    runs += [_classification("slr", 1.96, 0, whole=1.0, rho=rho, s0=s0) for rho in (0.1, 0.01) for s0 in (1e-2, 1e-5)]
    runs += [_classification(m, 6.5, 0, whole=3.0, experiment=e, dataset="imagenet", metric="top5")
             for m in ("slr", "admm") for e in ("r18_imagenet", "r50_imagenet")]
    runs += [_classification(m, 3.4, 0, whole=2.0, experiment="r50_cifar") for m in ("slr", "admm")]
    for name in fig_classification.FIGURES:
        _check_title(fig_classification.draw(name, runs), int(name[6:]))
    fig = fig_classification.figure1(runs, "r18_cifar", paper_numbers("table7"))
    assert any(line.get_label() == "SLR (paper)" and 88.12 in list(line.get_ydata()) for line in fig.axes[0].lines)


def test_heatmap_figures_have_titles(tmp_path):
    for i, method in enumerate(("slr", "admm")):
        run = _classification(method, 8.71, 0, whole=5.0, heatmaps="heatmaps.pt")
        write_results(tmp_path / method / "results.json", run)
        save_snapshots(tmp_path / method / "heatmaps.pt",
                       {s: {"a.weight": torch.full((4, 9), float(i + j), dtype=torch.float16)}
                        for j, s in enumerate(("dense", "after_training", "after_hard_pruning"))})
    results = collect_results(tmp_path)
    for number in (13, 19):
        fig = heatmaps.draw(number, results)
        _check_title(fig, number, every_axes=False)  # one title per layer column, on the top row
        assert "ResNet-18, CIFAR-10" in _title(fig)


def _fidelity(method, rate, seed, hard):
    run = _classification(method, rate, seed, (90.0, 80.0, hard, 85.0), whole=rate / 2)
    run["config"]["recipe"]["extra"] = {"experiment": "paper"}
    run["pruner_history"] = [{"violation": v, "condition": None} for v in (4.0, 2.0, 1.0)]
    return run


def test_fidelity_figures_have_titles():
    runs = [_fidelity(m, rate, s, 80.0 + s) for m in ("slr", "admm") for rate in (1.96, 8.71) for s in (0, 1)]
    _check_title(fig_fidelity.figure1_fidelity(runs), 1)
    _check_title(fig_fidelity.figure2_fidelity(runs), 2)


# Figures 3, 4 and 12: titles and the paper's values ----------------------------------------------
def _paper_lines(ax):
    return {line.get_label(): line for line in ax.get_lines() if "paper" in line.get_label()}


def _xy(line):
    return [float(x) for x in line.get_xdata()], [float(y) for y in line.get_ydata()]


def test_figure3_overlays_table3_after_hard_pruning():
    runs = [_kitti(m, rate, hard) for m, hard in (("slr", 40.0), ("admm", 30.0)) for rate in (4.874, 9.449)]
    fig = fig_kitti.figure3(runs)
    _check_title(fig, 3)
    assert "paper" in _title(fig) and "after hard-pruning" in _title(fig)
    rates = [4.874, 5.702, 6.431, 9.449]
    expected = {  # the paper's Table 3, "After Hardpruning" columns
        "easy": {"ADMM": [77.0, 74.7, 72.9, 58.6], "SLR": [77.8, 77.3, 76.6, 68.0]},
        "moderate": {"ADMM": [73.8, 71.9, 69.9, 54.1], "SLR": [74.5, 74.5, 73.2, 65.6]},
        "hard": {"ADMM": [51.9, 50.1, 48.5, 30.8], "SLR": [52.0, 52.9, 49.5, 46.1]},
    }
    for ax, diff, original in zip(fig.axes, KITTI_DIFFS, (80.7, 78.5, 60.7)):
        paper = _paper_lines(ax)
        for method, values in expected[diff].items():
            assert _xy(paper[f"{method} (paper, Table 3)"]) == (rates, values)
        assert _xy(paper["original (paper, Table 3)"])[1] == [original, original]
        ours = {line.get_label(): _xy(line) for line in ax.get_lines() if "ours" in line.get_label()}
        offset = 10 * KITTI_DIFFS.index(diff)
        assert ours["SLR (ours)"] == ([4.874, 9.449], [40.0 + offset] * 2)


def test_figure12_overlays_table3_at_epochs_0_and_3():
    runs = [_kitti("slr", 9.449, 20.0, (30.0, 35.0, 38.0)), _kitti("admm", 9.449, 10.0, (15.0, 20.0, 22.0)),
            _kitti("slr", 4.874, 40.0, (45.0,))]
    fig = fig_kitti.figure12(runs)
    _check_title(fig, 12)
    expected = {"easy": {"ADMM": [58.6, 70.9], "SLR": [68.0, 79.9]}, "moderate": {"ADMM": [54.1, 66.8], "SLR": [65.6, 75.8]},
                "hard": {"ADMM": [30.8, 35.6], "SLR": [46.1, 51.4]}}
    for ax, diff in zip(fig.axes, KITTI_DIFFS):
        paper = _paper_lines(ax)
        for method, values in expected[diff].items():
            line = paper[f"{method} (paper, Table 3: epochs 0 and 3)"]
            assert _xy(line) == ([0.0, 3.0], values) and line.get_linestyle() == "None"  # two known points, no curve between
        assert _xy(paper["original (paper, Table 3)"])[1][0] == {"easy": 80.7, "moderate": 78.5, "hard": 60.7}[diff]
    ours = {line.get_label(): _xy(line) for line in fig.axes[0].get_lines() if "ours" in line.get_label()}
    assert ours["SLR (ours)"] == ([0.0, 1.0, 2.0, 3.0], [20.0, 30.0, 35.0, 38.0])
    # another of Table 3's rates: its numbers; a rate the paper lacks: no paper marker, and the title says so
    fig = fig_kitti.figure12(runs, rate=4.874)
    assert _xy(_paper_lines(fig.axes[2])["SLR (paper, Table 3: epochs 0 and 3)"])[1] == [52.0, 56.4]
    odd = [_kitti("slr", 2.0, 20.0, (25.0,))]
    fig = fig_kitti.figure12(odd, rate=2.0)
    assert not _paper_lines(fig.axes[0]) and "no 2x" in _title(fig)


def test_figure4_overlays_table2_and_the_epochs_the_text_names():
    runs = [_yolo("slr", 2.0, 0, 30.0, (31.0, 33.0, 34.0)), _yolo("admm", 2.0, 0, 25.0, (27.0, 29.0, 30.0))]
    fig = fig_yolo.figure4(runs)
    _check_title(fig, 4)
    ax = fig.axes[0]
    paper = _paper_lines(ax)
    assert _xy(paper["SLR hard-pruned (paper, Table 2)"]) == ([0.0], [33.5])  # Table 2, YOLOv3-tiny at 2x
    assert _xy(paper["ADMM hard-pruned (paper, Table 2)"]) == ([0.0], [30.6])
    assert _xy(paper["original (paper, Table 2)"])[1] == [37.1, 37.1]
    assert _xy(paper["SLR peaks: epoch 3 (paper, Sec. 4.3.2)"])[0] == [3.0, 3.0]
    assert _xy(paper["ADMM catches up: epoch 10 (paper, Sec. 4.3.2)"])[0] == [10.0, 10.0]
    ours = [line for line in ax.get_lines() if "ours" in line.get_label()]
    assert [_xy(line)[1] for line in ours] == [[25.0, 27.0, 29.0, 30.0], [30.0, 31.0, 33.0, 34.0]]  # ADMM, then SLR
    # at 3.33x Table 2 still gives the hard-pruned values, but the text's epochs are about 2x only
    fig = fig_yolo.figure4([_yolo("slr", 3.33, 0, 30.0, (31.0,))], rate=3.33)
    paper = _paper_lines(fig.axes[0])
    assert _xy(paper["SLR hard-pruned (paper, Table 2)"])[1] == [34.6] and not any("epoch" in k for k in paper)


def test_the_overlay_numbers_cite_the_paper():
    figures = paper_numbers("figures")
    assert figures["figure4"]["slr_peak_epoch"] == 3 and figures["figure4"]["admm_catch_up_epoch"] == 10
    assert figures["figure12"]["retrain_epochs"] == 3 and figures["figure12"]["rate"] == 9.449
    assert {figures[f]["table"] for f in ("figure3", "figure4", "figure12")} == {"table2", "table3"}
