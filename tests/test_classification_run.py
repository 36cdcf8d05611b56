"""Configs, the entry point and short end-to-end runs (digits; shared CIFAR-10 when present)."""
import json
import os
from pathlib import Path

import pytest

from classification.__main__ import ClassificationEntry, main
from classification.data import load_data
from classification.task import ClassificationTask
from core.harness.dense import build_dense_model
from core.harness.grid import run_grid
from core.harness.recipe import expand_runs, load_experiments

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = ["model.width=0.0625", "dense.epochs=1", "pruning.epochs=2", "pruning.retrain_epochs=1", "batch_size=64"]


def load_table(table, profile, overrides=()):
    """The experiments of ``classification/configs/<table>.yaml`` for ``profile``."""
    return load_experiments(ClassificationEntry.config_dir / f"{table}.yaml", profile, overrides)


def test_paper_protocol_in_the_configs():
    experiments = load_table("table1", "paper")
    by_name = {e.name: e.settings for e in experiments}
    r18 = by_name["r18_cifar"]
    assert (r18["optimizer"], r18["batch_size"], r18["rates"]) == ({"name": "adam", "lr": 0.01}, 128, [8.71])
    assert r18["pruning"] == {"epochs": 40, "retrain_epochs": 5, "rho": 0.1, "s0": 1e-4, "M": 200, "r": 0.1}
    assert r18["model"] == {"arch": "resnet18", "width": 1.0, "stem": "cifar", "pretrained": False}
    r50in = by_name["r50_imagenet"]
    assert r50in["pruning"]["epochs"] == 60 and r50in["primary_metric"] == "top5" and r50in["model"]["pretrained"]
    assert r50in["optimizer"]["name"] == "sgd" and r50in["optimizer"]["lr"] == 1e-4 and r50in["batch_size"] == 256
    assert [by_name[n]["rates"] for n in ("r50_cifar", "vgg16_cifar", "r18_imagenet")] == [[3.4], [3.08], [6.5]]
    assert load_table("table7", "paper")[0].settings["rates"] == [1.96, 3.21, 4.69, 6.09, 8.71]
    t8 = load_table("table8", "paper")[0].settings
    assert t8["rates"] == [4.03, 6.5, 7.15] and t8["pruning"]["retrain_epochs"] == 3


def test_ablation_grids():
    runs5 = expand_runs(load_table("table5", "paper")[0])
    assert {(r.hyper["rho"], r.hyper["s0"]) for _, r in runs5} == {(rho, s0) for rho in (0.1, 0.01) for s0 in (1e-2, 1e-3, 1e-4, 1e-5)}
    assert all(r.method == "slr" and r.epochs == 20 and r.retrain_epochs == 20 for _, r in runs5)
    runs6 = expand_runs(load_table("table6", "paper")[0])
    assert sorted((r.hyper["M"], r.hyper["r"]) for _, r in runs6) == [(100, 0.1), (200, 0.05), (200, 0.1), (200, 0.2), (300, 0.1)]
    assert len({name for name, _ in runs6}) == 5


def test_tiny_run_on_digits_reuses_the_dense_model(tmp_path):
    (experiment,) = load_table("table7", "smoke", TINY + ["rates=[4]", "data.image_size=8", "data.train_size=256", "data.test_size=128"])
    data = load_data(experiment.settings["data"], None)
    runs = [(n, r) for n, r in expand_runs(experiment, ["slr"], [0])]
    make = lambda recipe: ClassificationTask(experiment.settings, data, progress=False)  # noqa: E731
    first = run_grid(make, runs, tmp_path / "a", progress=False, dense_dir=tmp_path / "dense")[0]
    assert len(list((tmp_path / "dense").glob("*.pt"))) == 1
    second = run_grid(make, runs, tmp_path / "b", progress=False, dense_dir=tmp_path / "dense")[0]  # dense model read from the cache
    assert first["metrics"] == second["metrics"]  # training the dense model left the run's random state alone
    assert abs(first["achieved_compression"]["pruned_layers"] - 4.0) < 0.01
    assert set(first["metrics"]["after_retraining"]) == {"top1", "top5", "loss"}
    assert first["config"]["task"]["experiment"] == "r18_cifar" and first["dataset"] == "sklearn-digits"
    provenance = json.loads((tmp_path / "a" / runs[0][0] / "provenance.json").read_text())
    assert provenance["code_version"] == first["code_version"] and provenance["resumed"] is False
    assert provenance["cpu_count"] >= 1 and provenance["command"].startswith("python")


def test_entry_point_user_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DATA_ROOT", raising=False)
    with pytest.raises(SystemExit) as err:
        main(["--table", "table7", "--profile", "paper", "--out", str(tmp_path)])
    assert err.value.code == 2 and "data root" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["--table", "no_such_table", "--out", str(tmp_path)])
    assert err.value.code == 2 and "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["--table", "table1", "--experiment", "r34_cifar", "--out", str(tmp_path)])
    assert err.value.code == 2 and "r18_cifar" in capsys.readouterr().err


def test_short_run_on_shared_cifar10(tmp_path):
    root = os.environ.get("SLR_DATA_ROOT")
    if not root or not (Path(root) / "cifar10" / "train").is_dir():
        pytest.skip("SLR_DATA_ROOT/cifar10 is absent; set SLR_DATA_ROOT to the shared sample data (../shared/data)")
    main(["--table", "table1_cpu", "--profile", "paper", "--data-root", root, "--method", "admm", "--seed", "0",
          "--out", str(tmp_path / "runs"), "--no-progress", "--threads", "1",
          *sum((["--set", s] for s in TINY + ["rates=[4.69]", "data.train_subset=128", "data.test_subset=64"]), [])])
    results = json.loads((tmp_path / "runs" / "r18_cifar" / "admm_4.69x_seed0" / "results.json").read_text())
    assert results["dataset"] == "cifar10" and results["profile"] == "cpu"
    assert results["config"]["task"]["num_train"] == 128 and results["config"]["task"]["num_test"] == 64
    assert abs(results["achieved_compression"]["pruned_layers"] - 4.69) < 0.01


def test_stopped_dense_training_continues_to_the_same_weights(tmp_path, monkeypatch):
    """A dense training stopped after epoch 2 of 3 resumes from <cache>.partial.pt; with
    data.prune_subset the pruning stages see that many images and the dense stage all of them."""
    import torch

    overrides = TINY + ["dense.epochs=3", "data.image_size=8", "data.train_size=256", "data.test_size=64", "data.prune_subset=100"]
    (experiment,) = load_table("table7", "smoke", overrides)
    data = load_data(experiment.settings["data"], None)

    def train(folder, stop_after=None):
        task = ClassificationTask(experiment.settings, data, progress=False)
        with monkeypatch.context() as patch:
            if stop_after is not None:
                import core.harness.dense as dense

                real = dense.train_one_epoch

                def stopping(task, model, optimizer, scheduler, epoch, stage, seed):
                    if epoch == stop_after:
                        raise KeyboardInterrupt
                    return real(task, model, optimizer, scheduler, epoch, stage, seed)

                patch.setattr(dense, "train_one_epoch", stopping)
            return task, build_dense_model(task, tmp_path / folder)

    _, whole = train("a")
    with pytest.raises(KeyboardInterrupt):
        train("b", stop_after=2)
    assert len(list((tmp_path / "b").glob("*.partial.pt"))) == 1
    task, resumed = train("b", stop_after=1)  # no cache yet: continues from epoch 2, so epoch 1 never runs again
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not list((tmp_path / "b").glob("*.partial.pt")) and len(list((tmp_path / "b").glob("*.pt"))) == 1
    assert len(task.train_loader("dense").dataset) == 256 and len(task.train_loader("prune").dataset) == 100
