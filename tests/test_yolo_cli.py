"""python -m detection_yolo: user errors end in one line and exit code 2, before any training."""
import tempfile

import pytest

from detection_yolo.ultralytics_env import prepare_ultralytics

prepare_ultralytics(tempfile.mkdtemp(prefix="yolo_cfg_"))  # before anything imports Ultralytics

from detection_yolo.__main__ import main  # noqa: E402
from core.snapshots import pick_layers  # noqa: E402


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
