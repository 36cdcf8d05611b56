"""The three-stage pipeline, its results file, resumption, and the one-line user errors."""
import json
import subprocess
import sys

import pytest

from core import CheckpointError, DataError
from examples.digits_demo import DigitsTask
from core.harness.pipeline import PruningRecipe, run_pipeline
from core.harness.results import REQUIRED_KEYS, read_results, reproducible_part, write_results

SPARSITY = {"target_rate": 4.0, "include": ["0.weight", "2.weight"]}


def recipe(method="slr", hyper=None, **kw):
    return PruningRecipe(method=method, sparsity=SPARSITY, epochs=3, retrain_epochs=2, seed=1, hyper=dict(hyper or {}), **kw)


def small_task():
    return DigitsTask(dense_epochs=2)


@pytest.mark.parametrize("method", ["slr", "admm"])
def test_pipeline_writes_a_complete_results_file(tmp_path, method):
    results = run_pipeline(small_task(), recipe(method), tmp_path, progress=False)
    on_disk = read_results(tmp_path / "results.json")
    assert set(REQUIRED_KEYS) <= set(on_disk)
    assert on_disk["method"] == method and on_disk["target_compression"] == 4.0
    assert on_disk["achieved_compression"]["pruned_layers"] == pytest.approx(4.0, rel=1e-3)
    assert on_disk["achieved_compression"]["whole_model"] < 4.0
    for stage in ("dense", "after_training", "after_hard_pruning", "after_retraining"):
        assert 0.0 <= on_disk["metrics"][stage]["top1"] <= 100.0
    assert [(r["stage"], r["epoch"]) for r in on_disk["history"]] == [("prune", 0), ("prune", 1), ("prune", 2), ("retrain", 0), ("retrain", 1)]
    assert len(on_disk["pruner_history"]) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 and "violation" in rows[0] and "top1" in rows[0]
    assert results["metrics"] == on_disk["metrics"]


@pytest.mark.parametrize("stop_after", [2, 4])
def test_stopped_run_resumes_to_the_same_numbers(tmp_path, stop_after):
    full = run_pipeline(small_task(), recipe(), tmp_path / "full", progress=False)
    stopped = run_pipeline(small_task(), recipe(), tmp_path / "part", progress=False, stop_after_epochs=stop_after)
    assert stopped is None and not (tmp_path / "part" / "results.json").exists()
    resumed = run_pipeline(small_task(), recipe(), tmp_path / "part", resume=True, progress=False)
    assert json.dumps(reproducible_part(resumed), sort_keys=True, default=str) == json.dumps(reproducible_part(full), sort_keys=True, default=str)


def test_resume_with_other_settings_is_refused(tmp_path):
    run_pipeline(small_task(), recipe(), tmp_path, progress=False, stop_after_epochs=1)
    with pytest.raises(CheckpointError, match="another configuration"):
        run_pipeline(small_task(), recipe(hyper={"rho": 0.5}), tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        run_pipeline(small_task(), recipe(), tmp_path / "empty", resume=True, progress=False)


def test_results_schema_is_enforced(tmp_path):
    with pytest.raises(ValueError, match="lack required keys"):
        write_results(tmp_path / "r.json", {"task": "x"})
    assert not (tmp_path / "r.json").exists()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read results file"):
        read_results(tmp_path / "bad.json")


def test_user_error_is_one_line_and_exit_code_2():
    proc = subprocess.run([sys.executable, "-m", "examples.digits_demo", "--rate", "0.5"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: --rate 0.5 must be >= 1"]


def test_pipeline_applies_the_penalty_during_training(tmp_path):
    """The W step must feel rho (W - Z + U): a strong rho ends far closer to Z than a negligible one."""
    final = {}
    for rho in (1e-6, 2.0):
        results = run_pipeline(small_task(), recipe("admm", hyper={"rho": rho}), tmp_path / str(rho), progress=False)
        final[rho] = results["pruner_history"][-1]["violation"]
    assert final[2.0] < 0.3 * final[1e-6]


def test_nan_loss_is_a_user_error_and_writes_no_results(tmp_path):
    class Diverging(DigitsTask):
        def train_batches(self, stage, epoch, seed):
            self.diverge = stage == "prune" and epoch == 1
            return super().train_batches(stage, epoch, seed)

        def batch_loss(self, net, batch):
            result = super().batch_loss(net, batch)
            return result._replace(loss=result.loss * float("nan")) if self.diverge else result

    from core.harness.pipeline import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="training loss is nan in prune epoch 1"):
        run_pipeline(Diverging(dense_epochs=1), recipe(), tmp_path, progress=False)
    assert not (tmp_path / "results.json").exists()


def test_grid_resume_reuses_finished_runs_only_with_the_same_recipe(tmp_path):
    from core.harness.grid import run_grid

    first = run_grid(lambda r: small_task(), [("a", recipe())], tmp_path, progress=False)
    again = run_grid(lambda r: small_task(), [("a", recipe())], tmp_path, resume=True, progress=False)
    assert again[0]["metrics"] == json.loads(json.dumps(first[0]["metrics"]))
    assert again[0]["wall_time_s"] == json.loads((tmp_path / "a" / "results.json").read_text())["wall_time_s"]  # read, not rerun
    with pytest.raises(CheckpointError, match="finished run with another configuration"):
        run_grid(lambda r: small_task(), [("a", recipe(hyper={"rho": 0.3}))], tmp_path, resume=True, progress=False)


def test_weight_snapshots_for_the_heatmaps(tmp_path):
    """The run writes |W| blocks of its layers before pruning, after training and after hard-pruning;
    the hard-pruned block is the trained block with the final model's zeros (the masks held)."""
    import torch

    results = run_pipeline(small_task(), recipe(), tmp_path, progress=False)
    assert results["heatmaps"] == "heatmaps.pt"
    snaps = torch.load(tmp_path / "heatmaps.pt")
    assert set(snaps) == {"dense", "after_training", "after_hard_pruning"}
    final = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    for name in ("0.weight", "2.weight"):
        trained, pruned = snaps["after_training"][name].float(), snaps["after_hard_pruning"][name].float()
        assert trained.shape == pruned.shape == (64, 64)
        kept = final[name].abs().flatten(1)[:64, :64] != 0
        assert torch.equal(pruned != 0, kept)
        assert torch.equal(pruned[kept], trained[kept])
        assert 0 < kept.float().mean() < 0.5  # 4x over the two layers
        assert not torch.equal(snaps["dense"][name], snaps["after_training"][name])


def test_eval_every_thins_the_pruning_stage_only(tmp_path):
    results = run_pipeline(small_task(), recipe(eval_every=2), tmp_path, progress=False)
    evaluated = [(r["stage"], r["epoch"]) for r in results["history"] if r["metrics"]]
    assert evaluated == [("prune", 1), ("prune", 2), ("retrain", 0), ("retrain", 1)]  # every 2nd and the last; retraining all
