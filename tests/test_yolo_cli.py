"""python -m detection_yolo: user errors end in one line and exit code 2, before any training."""
import tempfile

import pytest

from detection_yolo.ultralytics_env import prepare_ultralytics

prepare_ultralytics(tempfile.mkdtemp(prefix="yolo_cfg_"))  # before anything imports Ultralytics

from detection_yolo.__main__ import main  # noqa: E402
from core.harness.snapshots import pick_layers  # noqa: E402


def _exit_line(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return exit_info.value.code, err


def test_paper_profile_without_coco_yaml(tmp_path, capsys):
    code, err = _exit_line(capsys, ["--profile", "paper", "--data-root", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: data YAML") and "coco.yaml not found" in err[0]
    assert not (tmp_path / "out" / "results.json").exists()


def test_missing_data_root(tmp_path, capsys):
    code, err = _exit_line(capsys, ["--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert code == 2 and "does not exist" in err[-1]


def test_auto_optimizer_and_misplaced_train_arguments_are_refused(tmp_path, capsys):
    small = ["--out", str(tmp_path / "out"), "--set", "data.n_train=2", "--set", "data.n_val=1"]
    code, err = _exit_line(capsys, [*small, "--set", "optimizer.name=auto"])
    assert code == 2 and len(err) == 1 and "optimizer.name must name the optimizer" in err[0]
    code, err = _exit_line(capsys, [*small, "--set", "train.lr0=0.1"])
    assert code == 2 and err == ["error: train.lr0 is not a train setting here; set optimizer.lr instead"]
    assert not (tmp_path / "out").exists()  # refused before anything trained: nothing left behind


def test_unknown_experiment_and_pruning_key(tmp_path, capsys):
    code, err = _exit_line(capsys, ["--out", str(tmp_path / "out"), "--experiment", "yolov3-tiny_4x"])
    assert code == 2 and "has no experiment ['yolov3-tiny_4x']" in err[-1] and "yolov3-tiny_2x" in err[-1]
    code, err = _exit_line(capsys, ["--out", str(tmp_path / "out"), "--set", "pruning.rh0=1"])
    assert code == 2 and len(err) == 1 and "unknown pruning key(s) ['rh0']" in err[0]
    code, err = _exit_line(capsys, ["--out", str(tmp_path / "out"), "--method", "gmp", "--set", "data.n_train=2", "--set", "data.n_val=1"])
    assert code == 2 and err == ["error: method 'gmp' cannot run inside Ultralytics' trainer (it adds no penalty gradient to the step); "
                                 "use one of slr, admm, slr_authors, admm_authors"]
    assert not (tmp_path / "out").exists()


def test_device_reaches_ultralytics_as_its_device_string():
    import torch

    from detection_yolo.pipeline import train_args, ultralytics_device

    assert ultralytics_device(torch.device("cpu")) == "cpu" and ultralytics_device("cpu") == "cpu"
    assert ultralytics_device(torch.device("cuda", 1)) == "1" and ultralytics_device(torch.device("cuda")) == "0"
    settings = {"device": "auto", "batch_size": 4, "optimizer": {"name": "SGD", "lr": 0.02, "momentum": 0.9}, "train": {"imgsz": 32}}
    args = train_args(settings, "d.yaml", 0, device=torch.device("cpu"))
    assert args["device"] == "cpu" and args["amp"] is False  # the driver's device wins over the config's
    assert (args["optimizer"], args["lr0"], args["momentum"], args["batch"], args["nbs"]) == ("SGD", 0.02, 0.9, 4, 4)
    retrain = train_args({**settings, "retrain_optimizer": {"lr": 0.001}}, "d.yaml", 0, stage="retrain", device="cpu")
    assert retrain["lr0"] == 0.001 and retrain["optimizer"] == "SGD"


def test_pick_layers_spreads_evenly():
    names = [f"l{i}" for i in range(10)]
    assert pick_layers(names, 5) == ["l0", "l2", "l4", "l7", "l9"]
    assert pick_layers(names[:3], 5) == names[:3]


def test_help_example_sets_every_experiments_epochs():
    from core.harness.recipe import expand_runs, load_experiments
    from detection_yolo.__main__ import CONFIG_DIR

    experiments = load_experiments(CONFIG_DIR / "table2.yaml", "smoke", ["pruning.epochs=5"])  # the --help example
    assert [e.name for e in experiments] == ["yolov3-tiny_1.19x", "yolov3-tiny_2x", "yolov3-tiny_3.33x", "yolov3-spp_1.986x"]
    runs = [run for e in experiments for run in expand_runs(e)]
    assert [r.epochs for _, r in runs] == [5] * 8 and [r.retrain_epochs for _, r in runs] == [0, 0, 2, 2, 0, 0, 0, 0]
    slr, admm = runs[2][1], runs[3][1]
    assert slr.pruner_settings() == {"rho": 0.1, "s0": 1.0e-4, "M": 200, "r": 0.1, "amplify": None, "epochs": 5, "update_every": 1}
    assert admm.pruner_settings() == {"rho": 0.1, "amplify": None, "epochs": 5, "update_every": 1}
    assert experiments[3].settings["model"] == {"name": "yolov3-spp", "width_multiple": 0.25}
    paper = load_experiments(CONFIG_DIR / "table2.yaml", "paper")
    assert [(e.settings["rates"], e.settings["pruning"]["epochs"], e.settings["pruning"]["retrain_epochs"]) for e in paper] == [
        ([1.19], 15, 0), ([2.0], 20, 10), ([3.33], 40, 0), ([1.986], 30, 0)]  # Table 2's rows


def test_model_flag_becomes_an_override_that_later_sets_refine():
    from detection_yolo.__main__ import split_model_arg

    argv, progress = split_model_arg(["--method", "slr", "--model", "yolov8n.yaml", "--set", "model.width_multiple=0.5", "--no-progress"])
    assert argv == ["--set", 'model={"name": "yolov8n.yaml"}', "--method", "slr", "--set", "model.width_multiple=0.5", "--no-progress"]
    assert progress is False
    assert split_model_arg(["--set", "x=1"]) == (["--set", "x=1"], True)


def test_model_flag_refuses_what_is_not_a_detection_model(tmp_path, capsys):
    code, err = _exit_line(capsys, ["--out", str(tmp_path / "out"), "--model", "yolov8n-seg.yaml"])
    assert code == 2 and err == ["error: model 'yolov8n-seg.yaml' ends in a Segment head; this task prunes detection models "
                                 "(a Detect head), e.g. yolov3-tiny, yolov8n, yolo11n"]
    code, err = _exit_line(capsys, ["--out", str(tmp_path / "out"), "--model", str(tmp_path / "dense.pt")])
    assert code == 2 and err == [f"error: model checkpoint {tmp_path / 'dense.pt'} not found; give a trained Ultralytics .pt or a model YAML/name"]
    from ultralytics import YOLO

    YOLO("yolov8n-cls.yaml").save(str(tmp_path / "cls.pt"))
    code, err = _exit_line(capsys, ["--out", str(tmp_path / "out"), "--model", str(tmp_path / "cls.pt")])
    assert code == 2 and err == [f"error: {tmp_path / 'cls.pt'} is a classify model; this task prunes detection models"]
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    code, err = _exit_line(capsys, ["--out", str(tmp_path / "out"), "--model", str(tmp_path / "junk.pt")])
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'junk.pt'} is not an Ultralytics checkpoint")
    assert not (tmp_path / "out").exists()


def test_resume_that_restarts_a_stage_says_so(tmp_path):
    import torch

    from detection_yolo.trainer import resume_overrides

    lines = []
    stage = tmp_path / "prune"
    assert resume_overrides(stage, True, lines.append) == {} and lines == []  # nothing there: a first start, silent
    (stage / "weights").mkdir(parents=True)
    torch.save({"epoch": 2}, stage / "weights" / "last.pt")
    assert resume_overrides(stage, True, lines.append) == {}
    assert lines == [f"resume: {stage} restarts from its first epoch: weights/last.pt (epoch 3) has no resume_e2.pt beside it "
                     "(stopped between the two writes)"]
    (stage / "weights" / "resume_e2.pt").write_bytes(b"")
    assert resume_overrides(stage, True, lines.append) == {"resume": str(stage / "weights" / "last.pt")} and len(lines) == 1
    assert resume_overrides(stage, False, lines.append) == {} and len(lines) == 1


def test_cli_prunes_yolov8n_from_scratch(tmp_path, capsys):
    import json

    import torch
    from ultralytics import YOLO

    from core import compression_stats

    argv = ["--model", "yolov8n.yaml", "--method", "slr", "--no-progress", "--out", str(tmp_path / "out"), "--experiment", "yolov3-tiny_2x",
            "--set", "data.n_train=8", "--set", "data.n_val=4", "--set", "data.imgsz=64", "--set", "train.imgsz=64", "--set", "batch_size=4",
            "--set", "dense.epochs=1", "--set", "pruning.epochs=1", "--set", "pruning.retrain_epochs=1", "--device", "cpu"]
    main(argv)
    out = capsys.readouterr().out
    assert "data: train: 8 images, 0 dropped" in out and "data: val: 4 images, 0 dropped" in out
    run = tmp_path / "out" / "yolov3-tiny_2x" / "slr_2x_seed0"
    results = json.loads((run / "results.json").read_text())
    assert results["model"] == "yolov8n" and results["dataset"] == "shapes"
    assert results["config"]["task"]["model"] == {"name": "yolov8n.yaml"} and results["config"]["task"]["ultralytics_device"] == "cpu"
    dense = [p.name for p in (tmp_path / "dense").iterdir()]  # the driver's dense cache: <out>/../dense
    assert len(dense) == 1 and dense[0].startswith("yolov8n_shapes_")
    assert results["config"]["task"]["dense_model"]["source"].startswith("trained here")
    assert [h["stage"] for h in results["history"]] == ["prune", "retrain"]
    assert results["achieved_compression"]["pruned_layers"] == pytest.approx(2.0, rel=1e-3)
    names = [row["name"] for row in results["per_layer"]]
    assert len(names) == 56  # Table 2's layers: every Conv block but the first and the fixed DFL kernel
    for weights in (run / "prune" / "weights" / "pruned.pt", run / "retrain" / "weights" / "last.pt"):
        assert compression_stats(YOLO(str(weights)).model, names).pruned_layers_rate == pytest.approx(2.0, rel=1e-3)
    assert sorted(p.name for p in (run / "prune" / "weights").iterdir()) == ["last.pt", "masks.pt", "pruned.pt"]
    for stage in ("prune", "retrain"):
        for weights in (run / stage / "weights").glob("*.pt"):
            if weights.name != "masks.pt":
                assert torch.load(weights, weights_only=False)["optimizer"] is None, weights  # stripped
