"""Table 2 and Figure 4 from hand-made detection_yolo results files."""

from core.harness.results import SCHEMA_VERSION, write_results
from figures.common import collect_results, paper_numbers
from figures.fig_yolo import figure4, retrain_curve
from figures.table2 import table2_rows


def _result(method, rate, seed, trained, pruned, retrain=(), model="yolov3-tiny"):
    history = [{"stage": "prune", "epoch": 0, "loss": 1.0, "metrics": {"mAP50": trained}}]
    history += [{"stage": "retrain", "epoch": i, "loss": 1.0, "metrics": {"mAP50": v}} for i, v in enumerate(retrain)]
    metrics = {"dense": {"mAP50": 37.0}, "after_training": {"mAP50": trained}, "after_hard_pruning": {"mAP50": pruned},
               "after_retraining": {"mAP50": retrain[-1] if retrain else pruned}}
    return {"schema_version": SCHEMA_VERSION, "task": "detection_yolo", "model": model, "dataset": "coco2014", "method": method,
            "profile": "paper", "seed": seed, "target_compression": rate,
            "achieved_compression": {"pruned_layers": rate, "whole_model": rate * 0.9}, "primary_metric": "mAP50",
            "metrics": metrics, "history": history, "per_layer": [],
            "config": {"recipe": {"epochs": 20, "retrain_epochs": len(retrain)}}, "wall_time_s": 1.0, "code_version": "x",}


def test_table2_rows_average_seeds_and_sit_beside_the_paper(tmp_path):
    runs = [_result("slr", 2.0, 0, 33.0, 32.0), _result("slr", 2.0, 1, 35.0, 34.0), _result("admm", 2.0, 0, 31.0, 30.0),
            _result("admm", 1.986, 0, 59.0, 52.0, model="yolov3-spp")]
    for i, r in enumerate(runs):
        write_results(tmp_path / f"run{i}" / "results.json", r)
    rows = table2_rows(collect_results(tmp_path, task="detection_yolo"), paper_numbers("table2"))
    assert [row[:4] for row in rows] == [["YOLOv3-tiny", "20", "2×", "ADMM"], ["YOLOv3-tiny", "20", "2×", "SLR"],
                                         ["YOLOv3-SPP", "20", "1.986×", "ADMM"]]
    slr = rows[1]
    assert slr[5] == "34.0 ± 1.4" and slr[6] == "33.0 ± 1.4"  # mean ± sample std of (33, 35) and (32, 34)
    assert slr[8:10] == ["2.000 ± 0.000×", "1.800 ± 0.000×"]  # achieved rate on the pruned layers, then on the whole model
    assert slr[10:] == ["37.1", "33.6", "33.5"]  # the paper's 2x SLR row
    assert rows[2][10:] == ["64.4", "59.3", "52.0"]


def test_paper_numbers_are_complete():
    paper = paper_numbers("table2")
    assert len(paper["rows"]) == 8
    assert {(r["model"], r["rate"]) for r in paper["rows"]} == {("yolov3-tiny", 1.19), ("yolov3-tiny", 2.0),
                                                                ("yolov3-tiny", 3.33), ("yolov3-spp", 1.986)}


def test_figure4_curve_starts_at_the_hard_pruned_model():
    r = _result("slr", 2.0, 0, 33.0, 30.0, retrain=(31.0, 33.5, 34.0))
    assert retrain_curve(r) == ([0, 1, 2, 3], [30.0, 31.0, 33.5, 34.0])
    fig = figure4([r, _result("admm", 2.0, 0, 31.0, 28.0, retrain=(29.0, 30.0, 31.0))])
    ours = [line for line in fig.axes[0].lines if "paper" not in line.get_label()]
    assert len(ours) == 2  # one per run; the paper's overlay is checked in test_figures_paperstyle.py
