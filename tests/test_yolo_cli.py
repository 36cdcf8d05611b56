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


def test_auto_optimizer_is_refused(tmp_path, capsys):
    argv = ["--out", str(tmp_path / "out"), "--set", "train.optimizer=auto", "--set", "shapes.n_train=2", "--set", "shapes.n_val=1"]
    code, err = _exit_line(capsys, argv)
    assert code == 2 and "train.optimizer must name the optimizer" in err[-1]


def test_unknown_profile_key_run_entry(tmp_path, capsys):
    code, err = _exit_line(capsys, ["--out", str(tmp_path / "out"), "--set", "runs=[{model: yolov3-tiny, ratio: 2}]",
                                    "--set", "shapes.n_train=2", "--set", "shapes.n_val=1"])
    assert code == 2 and "unknown or missing keys" in err[-1]


def test_pick_layers_spreads_evenly():
    names = [f"l{i}" for i in range(10)]
    assert pick_layers(names, 5) == ["l0", "l2", "l4", "l7", "l9"]
    assert pick_layers(names[:3], 5) == names[:3]


def test_help_example_sets_every_runs_epochs(tmp_path, capsys):
    from core.harness.config import apply_overrides, load_run_config
    from detection_yolo.__main__ import CONFIG_DIR
    from detection_yolo.pipeline import make_recipe, table_runs

    config = apply_overrides(load_run_config(CONFIG_DIR / "table2.yaml", "smoke"), ["pruning.epochs=5"])  # the --help example
    runs = table_runs(config)
    assert [r.epochs for r in runs] == [5, 5, 5, 5] and [r.retrain_epochs for r in runs] == [0, 2, 0, 0]
    assert make_recipe(config, runs[1], "slr", 0).epochs == 5 and make_recipe(config, runs[1], "slr", 0).rho == 0.1
    code, err = _exit_line(capsys, ["--out", str(tmp_path / "out"), "--set", "pruning.rh0=1"])
    assert code == 2 and len(err) == 1 and "the pruning section has an unknown key" in err[0]


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

    argv = ["--model", "yolov8n.yaml", "--method", "slr", "--no-progress", "--out", str(tmp_path / "out"),
            "--set", "shapes={n_train: 8, n_val: 4, imgsz: 64}", "--set", "train.imgsz=64", "--set", "train.batch=4",
            "--set", "dense.epochs=1", "--set", "pruning.epochs=1", "--set", "pruning.retrain_epochs=1",
            "--set", "runs=[{model: yolov3-tiny, rate: 2.0, epochs: 3}]"]
    main(argv)
    out = capsys.readouterr().out
    assert "data: train: 8 images, 0 dropped" in out and "data: val: 4 images, 0 dropped" in out
    run = tmp_path / "out" / "slr_yolov8n_2x_seed0"
    results = json.loads((run / "results.json").read_text())
    assert results["model"] == "yolov8n" and results["dataset"] == "shapes"
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
