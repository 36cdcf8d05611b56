"""``python -m pointpillars_kitti``: user errors exit with one line, a tiny smoke run writes a results file."""
from __future__ import annotations

import json

import pytest

from pointpillars_kitti.__main__ import main


def test_paper_profile_without_data_root_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("DATA_ROOT", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["--profile", "paper", "--out", str(tmp_path / "runs")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no data root") and "--data-root" in err and "\n" not in err


def test_missing_split_file_and_unknown_source_are_user_errors(monkeypatch, capsys, tmp_path):
    (tmp_path / "kitti" / "training" / "velodyne").mkdir(parents=True)
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "kitti"))
    with pytest.raises(SystemExit) as exc:  # neither a dense model nor its training (on generated scenes: the data reads first)
        main(["--out", str(tmp_path / "runs"), "--no-progress", "--set", "dense.epochs=0", "--set", "data.num_train_scenes=2",
              "--set", "data.num_eval_scenes=1"])
    assert exc.value.code == 2 and "dense.checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # the paper profile as it stands starts, and reads the data
        main(["--profile", "paper", "--out", str(tmp_path / "runs")])
    assert exc.value.code == 2 and "ImageSets/train.txt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "runs"), "--set", "data.source=nuscenes"])
    assert exc.value.code == 2 and "data.source" in capsys.readouterr().err


def test_tiny_smoke_run_writes_a_results_file(tmp_path, capsys):
    out = tmp_path / "runs"
    main(["--out", str(out), "--method", "slr", "--no-progress", "--threads", "1",
          "--set", "rates=[4.874]", "--set", "dense.epochs=1", "--set", "pruning.epochs=1", "--set", "pruning.retrain_epochs=2",
          "--set", "data.num_train_scenes=2", "--set", "data.num_eval_scenes=1"])
    results = json.loads((out / "slr_4.874x_seed0" / "results.json").read_text())
    assert results["task"] == "pointpillars_kitti" and results["dataset"] == "synthetic-kitti"
    assert results["primary_metric"] == "3d_iou05_R11_mAP_moderate"
    assert results["achieved_compression"]["pruned_layers"] == pytest.approx(4.874, rel=0.01)
    for stage in ("dense", "after_training", "after_hard_pruning", "after_retraining"):
        assert "bev_official_R40_mAP_easy" in results["metrics"][stage]
    retrain = [row for row in results["history"] if row["stage"] == "retrain"]
    assert [row["epoch"] for row in retrain] == [0, 1] and results["config"]["recipe"]["eval_every"] == 1
    assert all("3d_iou05_R11_mAP_hard" in row["metrics"] for row in retrain)  # every retraining epoch is evaluated (Figure 12)
    assert "aos_official_R40_mAP_moderate" in results["metrics"]["after_retraining"]
    assert (out / "synthetic_kitti" / "ImageSets" / "val.txt").read_text() == "000002\n"
    assert "slr 4.874x" in capsys.readouterr().out


def test_dense_model_is_cached_and_a_cached_run_repeats_the_numbers(tmp_path, capsys):
    tiny = ["--method", "admm", "--no-progress", "--threads", "1", "--dense-dir", str(tmp_path / "dense"),
            "--set", "rates=[4.874]", "--set", "dense.epochs=2", "--set", "pruning.epochs=1", "--set", "pruning.retrain_epochs=1",
            "--set", "data.num_train_scenes=3", "--set", "data.num_eval_scenes=1"]
    main(["--out", str(tmp_path / "first")] + tiny)
    cached = list((tmp_path / "dense").glob("pointpillars_synthetic-kitti_*.pt"))
    assert len(cached) == 1 and "trained here, cached in" in capsys.readouterr().out
    main(["--out", str(tmp_path / "second")] + tiny)  # loads the cache: no dense training, the same numbers
    assert f"dense model: {cached[0]} (cached)" in capsys.readouterr().out
    first, second = (json.loads((tmp_path / d / "admm_4.874x_seed0" / "results.json").read_text()) for d in ("first", "second"))
    assert first["metrics"] == second["metrics"]
    assert [row["loss"] for row in first["history"]] == [row["loss"] for row in second["history"]]
    main(["--out", str(tmp_path / "third")] + tiny + ["--set", "dense.epochs=1"])  # the later --set wins
    assert len(list((tmp_path / "dense").glob("*.pt"))) == 2  # other dense settings: another cache file


def test_paper_profile_trains_the_dense_model_on_openpcdets_schedule_and_evaluates_every_epoch():
    from core.harness.recipe import expand_runs, load_experiments
    from pointpillars_kitti.__main__ import KittiEntry

    (experiment,) = load_experiments(KittiEntry.config_dir / f"{KittiEntry.default_config}.yaml", "paper")
    cfg = experiment.settings
    assert cfg["dense"]["checkpoint"] is None and cfg["dense"]["epochs"] == 80  # no checkpoint: trained here, then cached
    assert cfg["optimizer"]["lr"] == 0.003 and cfg["optimizer"]["moms"] == [0.95, 0.85] and cfg["batch_size"] == 4
    assert cfg["pruning"]["epochs"] == 40 and cfg["pruning"]["retrain_epochs"] == 3 and cfg["pruning"]["eval_every"] == 1
    runs = expand_runs(experiment)
    assert [name for name, _ in runs][:2] == ["slr_4.874x_seed0", "admm_4.874x_seed0"] and len(runs) == 8
    assert all((r.epochs, r.retrain_epochs, r.eval_every, r.hyper["rho"]) == (40, 3, 1, 0.1) for _, r in runs)
    assert "dontcare_all_metrics" not in cfg["evaluation"]  # DontCare is handled per metric, as the devkit does
