"""benchmarks/paper_check.py (make paper-check): its checks on hand-made results files, and two of
its rows run through the same code path as the make target (the task entry points' real command
lines on the sample data)."""
from __future__ import annotations

import copy
import dataclasses
import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("paper_check", ROOT / "benchmarks" / "paper_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("paper_check", module)
    spec.loader.exec_module(module)
    return module


pc = _load()


def _results(rate: float = 4.0) -> dict:
    """A results file that passes: three layers pruned to ``rate`` by the rate solver's budgets."""
    sizes = [("a.weight", 1000), ("b.weight", 333), ("c.weight", 7)]
    total = sum(n for _, n in sizes)
    budget = round(total / rate)  # 335
    shares = [n * budget / total for _, n in sizes]  # 250.0, 83.25, 1.75
    kept = [250, 83, 2]
    assert sum(kept) == budget and all(k in (int(s), int(s) + 1) for k, s in zip(kept, shares))
    per_layer = [{"name": name, "shape": [n], "total": n, "nonzero": k, "rate": n / k} for (name, n), k in zip(sizes, kept)]
    metrics = {"top1": 10.0, "top5": 50.0}
    return {
        "schema_version": 1, "task": "classification", "model": "resnet18", "dataset": "cifar10", "method": "slr",
        "profile": "paper", "seed": 0, "target_compression": rate,
        "achieved_compression": {"pruned_layers": total / budget, "whole_model": 3.5},
        "primary_metric": "top1",
        "metrics": {stage: dict(metrics) for stage in ("dense", "after_training", "after_hard_pruning", "after_retraining")},
        "history": [{"stage": "prune", "epoch": 0, "loss": 2.3, "metrics": metrics},
                    {"stage": "retrain", "epoch": 0, "loss": 2.2, "metrics": metrics}],
        "per_layer": per_layer, "config": {}, "wall_time_s": 1.0, "code_version": "test",
    }


def test_a_complete_results_file_passes():
    failures, rates = pc.check_results(_results(), 4.0)
    assert failures == []
    assert rates["layers"] == 3 and rates["nonzero"] == rates["budget"] == 335
    assert rates["pruned_layers"] == pytest.approx(1340 / 335) and rates["whole_model"] == 3.5


def test_a_wrong_rate_fails():
    results = _results()
    failures, _ = pc.check_results(results, 8.71)  # not the rate the file was pruned to
    assert any("target_compression 4.0 is not the paper's 8.71" in f for f in failures)
    assert any("not round(1340 / 8.71) = 154" in f for f in failures)

    results = _results()
    results["per_layer"][0]["nonzero"] += 5  # one layer kept more than its budget
    results["achieved_compression"]["pruned_layers"] = 1340 / 340
    failures, _ = pc.check_results(results, 4.0)
    assert any("keep 340 of 1340 weights" in f for f in failures)
    assert any("1 layer(s) off their budget: a.weight keeps 255 of 1000" in f for f in failures)

    results = _results()
    results["achieved_compression"]["pruned_layers"] = 4.5  # the recorded rate disagrees with the counts
    failures, _ = pc.check_results(results, 4.0)
    assert failures == ["achieved_compression.pruned_layers 4.5 disagrees with the per-layer counts (4.000000x)"]


def test_a_missing_key_fails():
    results = _results()
    del results["code_version"]
    failures, _ = pc.check_results(results, 4.0)
    assert failures == ["results lack required keys ['code_version']"]


def test_a_stage_that_did_not_run_fails():
    results = _results()
    del results["metrics"]["after_retraining"]
    results["history"] = [r for r in results["history"] if r["stage"] != "retrain"]
    failures, _ = pc.check_results(results, 4.0)
    assert "stage after_retraining did not run (no metrics)" in failures
    assert "stage retrain ran 0 epoch(s), not 1" in failures

    results = _results()
    results["history"][0]["loss"] = float("nan")
    results["metrics"]["dense"]["top1"] = None
    failures, _ = pc.check_results(results, 4.0)
    assert "stage prune: loss not finite in epoch(s) [0]" in failures
    assert "stage dense: top1 is None, not a number" in failures


def test_the_dense_model_must_come_from_where_the_row_says():
    row = next(r for r in pc.ROWS if r.key == "table1/r18_cifar")
    places = {"dense": "/w/dense", "ufld": "/w/ufld.pt"}
    source = pc.dense_source(row, {}, "dense model: trained here, cached in /w/dense/x.pt\n")
    assert source == "trained here, cached in /w/dense/x.pt" and pc.dense_failures(row, source, places) == []
    assert pc.dense_failures(row, "/w/dense/x.pt (cached)", places) == []  # trained by an earlier row of the check
    assert pc.dense_failures(row, "/elsewhere/x.pt (cached)", places) == [
        "the dense model was not trained here (source: /elsewhere/x.pt (cached))"]
    ufld = next(r for r in pc.ROWS if r.key == "table4/ufld")
    assert pc.dense_failures(ufld, "/w/ufld.pt", places) == []
    assert pc.dense_failures(ufld, pc.dense_source(ufld, {}, "no such line"), places) == [
        "the dense model is not the random checkpoint (source: not reported)"]
    yolo = next(r for r in pc.ROWS if r.task == "detection_yolo")
    assert pc.dense_source(yolo, {"config": {"task": {"dense_model": {"source": "trained here, cached in d"}}}}, "") == "trained here, cached in d"


def test_every_table_has_its_rows():
    """Tables 1-8: every experiment of each config's paper profile is a row, at the paper's rates."""
    from core.harness.recipe import load_experiments

    keys = {r.key for r in pc.ROWS}
    for task, config in [("classification", f"table{n}") for n in (1, 5, 6, 7, 8)] + [("detection_yolo", "table2")]:
        for experiment in load_experiments(ROOT / task / "configs" / f"{config}.yaml", "paper"):
            row = f"{config}/{experiment.name}"
            assert row in keys, f"{row} has no paper-check row"
            rate = next(r.rate for r in pc.ROWS if r.key == row)
            assert rate in experiment.settings["rates"]
    assert {"table3/pointpillars", "table4/ufld"} <= keys
    copy.deepcopy(pc.ROWS)  # rows are plain data


def _profile_batch(row) -> int:
    """The batch of ``row``'s experiment in its task's paper profile."""
    import yaml

    from core.harness.recipe import load_experiments

    path = ROOT / row.task / "configs" / f"{row.config}.yaml"
    if row.experiment is None:
        return int(yaml.safe_load(path.read_text())["batch_size"])
    return int(next(e for e in load_experiments(path, "paper") if e.name == row.experiment).settings["batch_size"])


def test_rows_run_the_paper_batch_unless_memory_forbids_it():
    """Each row's paper batch is its profile's; a row runs another only where the paper's does not fit
    24 GiB, says so, and names the largest that does (--largest-batch)."""
    for row in pc.ROWS:
        assert row.paper_batch == _profile_batch(row), row.key
        if row.used_batch != row.paper_batch:
            assert row.batch_why.startswith("memory: ") and row.largest_batch, row.key
            assert row.used_batch <= row.largest_batch < row.paper_batch, row.key
        else:
            assert not row.batch_why and not row.largest_batch, row.key
    reduced = {r.key: r.used_batch for r in pc.ROWS if r.used_batch != r.paper_batch}
    assert reduced == {"table1/r50_imagenet": 32, "table2/yolov3-spp_1.986x": 2}
    largest = {r.key: r.used_batch for r in pc.largest_batches(pc.ROWS) if r.used_batch != r.paper_batch}
    assert largest == {"table1/r50_imagenet": 128, "table2/yolov3-spp_1.986x": 8}


def test_the_command_is_the_rows_paper_profile_with_the_checks_flags(tmp_path):
    row = next(r for r in pc.ROWS if r.key == "table1/r50_imagenet")
    places = {"data": "/d", "dense": "/w/dense", "resnet50": "/w/r50.pt"}
    cmd = pc.command(row, tmp_path, places, threads=2)
    text = " ".join(cmd)
    assert cmd[1:7] == ["-m", "classification", "--config", "table1", "--profile", "paper"]
    assert "--experiment r50_imagenet" in text and "--max-batches 2" in text and "--dense-checkpoint /w/r50.pt" in text
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert sets == ["rates=[3.89]", "pruning.epochs=1", "pruning.retrain_epochs=1", "batch_size=32",
                    "data.train_subset=64", f"data.test_subset={2 * pc.EVAL_BATCH}", f"data.eval_batch_size={pc.EVAL_BATCH}"]
    cifar = pc.command(next(r for r in pc.ROWS if r.key == "table1/r18_cifar"), tmp_path, places, threads=2)
    assert "dense.epochs=1" in cifar and not any(a.startswith("batch_size=") for a in cifar)  # the paper's batch, as the profile has it


@pytest.mark.data
def test_two_rows_run_and_pass(data_root, tmp_path):
    """ResNet-18 CIFAR-10 (Table 1; its dense model trained here) and UFLD (Table 4; a random
    dense checkpoint) through the make target's code path, at batch 4 to stay within CI's time
    (the target itself runs the paper's batches)."""
    rows = [dataclasses.replace(r, batch=4, batch_why="test") for r in pc.ROWS if r.key in ("table1/r18_cifar", "table4/ufld")]
    places = pc.prepare(data_root, tmp_path, rows)
    for row in rows:
        outcome = pc.run_row(row, tmp_path, places, threads=2, env=dict(os.environ))
        assert outcome.passed, f"{row.key}: {outcome.failures}\n{outcome.command}"
        assert outcome.rates["pruned_layers"] == pytest.approx(row.rate, rel=1e-3)
        assert outcome.rss > 0 and outcome.wall > 0
        assert "PASS" in pc.summary_line(outcome)


def test_max_batches_reaches_ultralytics_loaders():
    """detection_yolo maps --max-batches onto Ultralytics' loaders: each pass stops after n batches,
    validation restarts at the first batch, everything else is the loader's own."""
    pytest.importorskip("ultralytics")
    from detection_yolo.trainer import FirstBatches

    class Loader:  # Ultralytics' InfiniteDataLoader: one persistent iterator, reset() starts it over
        dataset, batch_size = list(range(10)), 1

        def __init__(self):
            self.resets, self.iterator = 0, None

        def __len__(self):
            return 10

        def reset(self):
            self.resets += 1
            self.iterator = None

        def __iter__(self):
            if self.iterator is None:
                self.iterator = iter(range(10))
            for _ in range(len(self)):
                yield next(self.iterator)

    train, val = FirstBatches(Loader(), 2), FirstBatches(Loader(), 2, restart=True)
    assert len(train) == 2 and train.dataset == list(range(10)) and train.batch_size == 1
    assert list(train) == [0, 1] and list(train) == [2, 3]  # the trainer resets it each epoch
    assert list(val) == [0, 1] and list(val) == [0, 1] and val.resets == 2
    assert len(FirstBatches(Loader(), 50)) == 10
