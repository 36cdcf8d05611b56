"""figures/fig_kitti.py: Figure 12 (mAP per retraining epoch after 9.44x pruning) from results files only."""
from __future__ import annotations

import pytest

from core.harness.results import REQUIRED_KEYS, write_results
from figures.fig_kitti import figure12_runs, main, mean_curves, retrain_curve

DIFFS = ("easy", "moderate", "hard")


def stage(value: float) -> dict[str, float]:
    return {f"3d_iou05_R11_mAP_{d}": value + 10 * i for i, d in enumerate(DIFFS)}


def fake_run(method: str, rate: float, hard: float, per_epoch: list[float], seed: int = 0) -> dict:
    """A results file: hard-pruned at ``hard``, retraining epochs at ``per_epoch`` (easy; moderate +10, hard +20)."""
    history = [{"stage": "prune", "epoch": 0, "loss": 1.0, "metrics": stage(50.0)}]
    history += [{"stage": "retrain", "epoch": e, "loss": 1.0, "metrics": stage(v)} for e, v in enumerate(per_epoch)]
    result = {k: None for k in REQUIRED_KEYS}
    result.update(schema_version=1, task="pointpillars_kitti", model="pointpillars", dataset="synthetic-kitti", method=method,
                  profile="smoke", seed=seed, target_compression=rate, primary_metric="3d_iou05_R11_mAP_moderate",
                  metrics={"dense": stage(60.0), "after_training": stage(50.0), "after_hard_pruning": stage(hard),
                           "after_retraining": stage(per_epoch[-1])},
                  history=history, per_layer=[], config={}, wall_time_s=1.0,
                  achieved_compression={"pruned_layers": rate, "whole_model": rate}, code_version="test")
    return result


def test_curves_start_at_the_hard_pruned_model_and_average_seeds():
    slr = fake_run("slr", 9.449, 5.0, [20.0, 30.0, 35.0])
    assert retrain_curve(slr, "3d_iou05_R11_mAP_hard") == {0: 25.0, 1: 40.0, 2: 50.0, 3: 55.0}
    slr1 = fake_run("slr", 9.449, 7.0, [22.0, 26.0, 39.0], seed=1)
    slr1["history"][2]["metrics"] = None  # retraining epoch 2 (index 1) not evaluated
    slr1["history"][3]["metrics"]["3d_iou05_R11_mAP_easy"] = float("nan")  # no valid ground truth: skipped too
    admm = fake_run("admm", 9.449, 1.0, [10.0, 12.0, 14.0])
    curves = mean_curves([slr, slr1, admm], "3d_iou05_R11_mAP_easy")
    assert curves["slr"] == ([0, 1, 2, 3], [6.0, 21.0, 30.0, 35.0], 2)  # epoch 2: seed 0 only; epoch 3: seed 0 only
    assert curves["admm"] == ([0, 1, 2, 3], [1.0, 10.0, 12.0, 14.0], 1)


def test_figure12_from_results_files(tmp_path, capsys):
    runs = [fake_run("slr", 9.449, 5.0, [20.0, 30.0, 35.0]), fake_run("admm", 9.449, 1.0, [10.0, 12.0, 14.0]),
            fake_run("slr", 4.874, 40.0, [45.0])]
    for r in runs:
        write_results(tmp_path / "runs" / f"{r['method']}_{r['target_compression']:g}x_seed0" / "results.json", r)
    main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "fig")])
    assert (tmp_path / "fig" / "figure12.png").stat().st_size > 10_000 and (tmp_path / "fig" / "figure12.pdf").is_file()
    assert "figure12.png" in capsys.readouterr().out
    assert [r["target_compression"] for r in figure12_runs(runs, 9.449)] == [9.449, 9.449]


def test_figure12_without_runs_at_the_rate_is_a_one_line_error(tmp_path, capsys):
    r = fake_run("slr", 4.874, 40.0, [45.0])
    write_results(tmp_path / "runs" / "slr" / "results.json", r)
    with pytest.raises(SystemExit) as exc:
        main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "fig")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "9.449x" in err and "make kitti" in err and "\n" not in err
    main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "fig"), "--rate", "4.874"])
    assert (tmp_path / "fig" / "figure12.png").is_file()
