"""The lane_tusimple task through core's pipeline, its configs and its command line, on tiny synthetic data."""
from pathlib import Path

import pytest

from core.harness.dense import dense_cache_path
from core.harness.pipeline import run_pipeline
from core.harness.recipe import expand_runs, load_experiments
from core.harness.results import read_results
from lane_tusimple.__main__ import DEFAULT_CONFIG
from lane_tusimple.synthetic import ensure_synthetic_tusimple, make_frame, tusimple_h_samples
from lane_tusimple.task import LaneData, LaneTask, build_datasets

TINY = ["model.input_size=[64, 160]", "model.width=4", "model.fc_hidden=16", "model.pool_channels=4", "batch_size=4",
        "eval_batch_size=8", "dense.epochs=1", "pruning.epochs=2", "pruning.retrain_epochs=1", "rates=[2.54]"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_profiles_follow_the_paper_and_stay_small_for_smoke():
    (experiment,) = load_experiments(DEFAULT_CONFIG, "paper")
    paper = experiment.settings
    assert paper["rates"] == [1.82, 2.54, 4.21]
    assert paper["pruning"]["epochs"] == 40 and paper["pruning"]["retrain_epochs"] == 3
    assert paper["model"]["input_size"] == [288, 800] and paper["model"]["griding_num"] == 100
    assert paper["model"]["num_anchors"] == 56 and paper["model"]["num_lanes"] == 4 and paper["model"]["width"] == 64
    assert not paper["model"]["pretrained_backbone"] or paper["dense"]["checkpoint"]
    smoke = load_experiments(DEFAULT_CONFIG, "smoke")[0].settings
    assert smoke["rates"] == [1.82, 2.54, 4.21]
    assert smoke["data"]["synthetic"] and not smoke["model"]["pretrained_backbone"] and not smoke["dense"]["checkpoint"]
    recipes = expand_runs(experiment, ["slr", "admm"], [0])
    assert [name for name, _ in recipes] == ["slr_1.82x_seed0", "admm_1.82x_seed0", "slr_2.54x_seed0", "admm_2.54x_seed0",
                                            "slr_4.21x_seed0", "admm_4.21x_seed0"]
    assert all(r.hyper["rho"] == 0.1 for _, r in recipes)
    assert all(r.hyper["s0"] == 1e-4 and r.hyper["M"] == 200 and r.hyper["r"] == 0.1 for _, r in recipes if r.method == "slr")
    assert all((r.epochs, r.retrain_epochs) == (40, 3) for _, r in recipes)


def test_synthetic_frames_are_tusimple_records():
    import numpy as np

    image, lanes, h_samples = make_frame(np.random.default_rng(0), 512, 288)
    assert image.size == (512, 288) and h_samples == tusimple_h_samples(288) == list(range(64, 288, 4))
    assert 2 <= len(lanes) <= 5
    for lane in lanes:
        assert len(lane) == len(h_samples) and all(x == -2 or 0 <= x <= 511 for x in lane)


def test_pipeline_run_writes_results(tmp_path):
    (experiment,) = load_experiments(DEFAULT_CONFIG, "smoke", TINY + ["data.synthetic.train=4", "data.synthetic.test=2"])
    config = experiment.settings
    root = ensure_synthetic_tusimple(tmp_path / "data", 4, 2, (320, 180), 0)
    train, test = build_datasets(config, root)
    (name, recipe), = expand_runs(experiment, ["slr"], [0])
    task = LaneTask(config, LaneData(root, "tusimple-synthetic", train, test), progress=False)
    results = run_pipeline(task, recipe, tmp_path / name, progress=False, dense_dir=tmp_path / "dense")
    assert dense_cache_path(task, tmp_path / "dense").is_file()
    stored = read_results(tmp_path / name / "results.json")
    assert stored["task"] == "lane_tusimple" and stored["primary_metric"] == "accuracy"
    for stage in ("dense", "after_training", "after_hard_pruning", "after_retraining"):
        assert 0.0 <= stored["metrics"][stage]["accuracy"] <= 100.0
        assert set(stored["metrics"][stage]) == {"accuracy", "fp", "fn"}
    assert stored["achieved_compression"]["pruned_layers"] == pytest.approx(2.54, rel=0.01)
    assert results["target_compression"] == 2.54


def test_cli_user_errors_exit_2_with_one_line(tmp_path, monkeypatch, capsys):
    from lane_tusimple.__main__ import main

    monkeypatch.delenv("DATA_ROOT", raising=False)
    cases = [(["--profile", "paper", "--out", str(tmp_path / "runs")], "DATA_ROOT"),
             (["--profile", "paper", "--data-root", str(tmp_path / "nowhere")], "does not exist"),
             (["--profile", "paper", "--data-root", str(tmp_path)], "label file"),
             (["--profile", "smoke", "--set", "rates=[0.5]", "--out", str(tmp_path / "runs")], "target_rate")]
    for argv, words in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(argv + ["--no-progress"])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, argv
        assert err.startswith("error: ") and err.strip().count("\n") == 0 and words in err, err


def test_table4_reads_results_and_prints_the_papers_numbers(tmp_path):
    from core.harness.results import SCHEMA_VERSION, write_results
    from figures.table4 import main as table4

    for method, acc in (("slr", 80.0), ("admm", 70.0)):
        metrics = {s: {"accuracy": acc, "fp": 1.0, "fn": 2.0} for s in ("dense", "after_training", "after_hard_pruning", "after_retraining")}
        write_results(tmp_path / "runs" / method / "results.json", {
            "schema_version": SCHEMA_VERSION, "task": "lane_tusimple", "model": "ufld-resnet18-w8", "dataset": "tusimple-synthetic",
            "method": method, "profile": "smoke", "seed": 0, "target_compression": 4.21,
            "achieved_compression": {"pruned_layers": 4.21, "whole_model": 3.9}, "primary_metric": "accuracy", "metrics": metrics,
            "history": [], "per_layer": [], "config": {}, "wall_time_s": 1.0, "code_version": "test"})
    text = table4(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "fig")]).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 4.21× | SLR"))
    assert "80.00" in row and "94.06" in row and "92.54" in row and "94.63" in row
    assert "| 1.82× | ADMM | - |" in text  # the paper's rows appear even without our run
    assert (tmp_path / "fig" / "table4.tex").is_file()


@pytest.mark.data
def test_pipeline_runs_on_real_512x288_frames(tmp_path):
    import os

    root = Path(os.environ.get("SLR_DATA_ROOT", "/nonexistent")) / "tusimple" / "downscaled_512x288"
    if not root.is_dir():
        pytest.skip("SLR_DATA_ROOT/tusimple/downscaled_512x288 is absent; set SLR_DATA_ROOT to the shared sample data")
    (experiment,) = load_experiments(DEFAULT_CONFIG, "paper", TINY + [
        "workers=0", "dense.checkpoint=null", "data.train_labels=[label_data.json]", "data.test_labels=[label_data.json]", "rates=[1.82]"])
    config = experiment.settings
    train, test = build_datasets(config, root)
    (name, recipe), = expand_runs(experiment, ["admm"], [0])
    task = LaneTask(config, LaneData(root, "tusimple", train, test), progress=False)
    results = run_pipeline(task, recipe, tmp_path / name, progress=False)
    assert results["dataset"] == "tusimple" and results["profile"] == "paper"
    assert results["achieved_compression"]["pruned_layers"] == pytest.approx(1.82, rel=0.01)
    assert all(0.0 <= results["metrics"][s]["accuracy"] <= 100.0 for s in ("dense", "after_retraining"))


def test_warmup_cosine_factors_against_hand_computed_values():
    """UFLD's schedule stepped after each optimizer step: iteration 0 at the base rate, iteration i >= 1
    at the factor of g = i - 1: g / warmup while g < warmup, then (1 + cos(pi g / total)) / 2."""
    import torch

    from lane_tusimple.task import warmup_cosine

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=2.0)
    scheduler = warmup_cosine(optimizer, total_steps=10, warmup_iters=4)
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(14):  # past the end: the schedule holds its last step
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    # cos(0.4 pi) = 0.309017, cos(0.5 pi) = 0, cos(0.6 pi) = -0.309017, cos(0.7 pi) = -0.587785, cos(0.8 pi) = -0.809017
    factors = [1.0, 0.0, 0.25, 0.5, 0.75, 0.6545085, 0.5, 0.3454915, 0.2061074, 0.0954915]
    assert rates[:10] == pytest.approx([2.0 * f for f in factors], abs=1e-6)
    assert rates[10:] == [rates[9]] * 5 and scheduler.scheduler.last_epoch == 9
