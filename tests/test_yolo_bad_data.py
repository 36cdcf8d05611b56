"""Bad detection data ends in one line, before training, as Ultralytics would read the data: a
relative ``path:`` (resolved from the working directory, as Ultralytics does), labels with 4
columns and files that are not images (dropped, and reported even without progress output), a
split where everything is dropped, and Ultralytics' own data exceptions in the trainers."""
import json
import tempfile
from pathlib import Path

import pytest
import yaml

from detection_yolo.ultralytics_env import prepare_ultralytics

prepare_ultralytics(tempfile.mkdtemp(prefix="yolo_cfg_"))  # before anything imports Ultralytics

from core.errors import DataError  # noqa: E402
from detection_yolo.__main__ import main  # noqa: E402
from detection_yolo.data import generate_shapes_dataset  # noqa: E402
from detection_yolo.pipeline import prepare_data  # noqa: E402

ONE_RUN = ["--method", "slr", "--no-progress", "--experiment", "yolov3-tiny_2x", "--set", "pruning.epochs=1"]


def _data_arg(data: Path) -> list[str]:
    """``--set`` of a data section that reads the Ultralytics data YAML ``data``."""
    return ["--set", "data=" + json.dumps({"name": "mine", "yaml": str(data)})]


def _shapes(root: Path, n_train: int = 6, n_val: int = 3) -> Path:
    """A small generated set with a data YAML whose ``path`` is absolute."""
    return generate_shapes_dataset(root, n_train=n_train, n_val=n_val, imgsz=32)


def _spoil(root: Path, split: str, index: int, how: str) -> Path:
    name = f"{split}_{index:04d}"
    if how == "4 columns":
        label = root / "labels" / split / f"{name}.txt"
        label.write_text("0 0.5 0.5 0.2\n")
        return label
    image = root / "images" / split / f"{name}.png"
    image.write_text("not an image\n")
    return image


def _cli(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out.strip().splitlines(), captured.err.strip().splitlines()


def test_relative_path_is_resolved_from_the_working_directory(tmp_path, capsys, monkeypatch):
    _shapes(tmp_path / "sets" / "shapes")
    data = tmp_path / "sets" / "shapes.yaml"  # path: is relative to the YAML's folder, not to where the user runs
    data.write_text(yaml.safe_dump({"path": "shapes", "train": "images/train", "val": "images/val", "names": {0: "a", 1: "b", 2: "c"}}))
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(capsys, [*ONE_RUN, *_data_arg(data), "--out", str(tmp_path / "out")])
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"error: {data}: data set root 'path: shapes' not found; Ultralytics resolves a relative path from the working directory {tmp_path}")
    assert "make it absolute" in err[0]
    monkeypatch.chdir(tmp_path / "sets")  # from there Ultralytics finds it: so does the check, in a resolved copy
    copy = prepare_data({"name": "mine", "yaml": str(data)}, tmp_path / "out2", None, log=None)
    assert yaml.safe_load(copy.read_text())["path"] == str(tmp_path / "sets" / "shapes")


def test_dropped_files_are_reported_and_an_all_bad_val_split_is_one_line(tmp_path, capsys):
    data = _shapes(tmp_path / "shapes")
    _spoil(tmp_path / "shapes", "train", 1, "4 columns")
    _spoil(tmp_path / "shapes", "train", 4, "not an image")
    for index in range(3):
        _spoil(tmp_path / "shapes", "val", index, "4 columns" if index else "not an image")
    code, out, err = _cli(capsys, [*ONE_RUN, *_data_arg(data), "--out", str(tmp_path / "out")])
    report = [line for line in out if line.startswith("data: ")]
    assert len(report) == 1 and report[0].startswith("data: train: 6 images, 2 dropped (train_0001.png: labels require 5 columns, 4 columns detected; train_0004.png: ")
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"error: {tmp_path / 'out' / 'data' / 'data.resolved.yaml'}: every val image is dropped (3 of 3; e.g. val_0000.png: ")
    assert err[0].endswith("fix the labels (one 'class cx cy w h' line per box, normalised to [0, 1]) or remove the files")
    assert not (tmp_path / "out").exists()  # a refused run leaves nothing behind


def test_drops_are_counted_as_ultralytics_counts_them(tmp_path):
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    data = _shapes(tmp_path / "shapes", n_train=5, n_val=2)
    _spoil(tmp_path / "shapes", "train", 0, "4 columns")
    _spoil(tmp_path / "shapes", "train", 2, "not an image")
    lines = []
    prepare_data({"name": "mine", "yaml": str(data)}, tmp_path / "out", None, log=lines.append)
    assert lines[0].startswith("data: train: 5 images, 2 dropped") and lines[1] == "data: val: 2 images, 0 dropped"
    checked = check_det_dataset(str(data))
    dataset = build_yolo_dataset(get_cfg(overrides={"imgsz": 32}), checked["train"], 2, checked, mode="val")
    assert len(dataset) == 5 - 2  # what Ultralytics keeps


def test_ultralytics_data_exceptions_in_the_trainer_are_one_line(tmp_path):
    from detection_yolo.trainer import PruneTrainer

    data = _shapes(tmp_path / "shapes", n_train=4, n_val=2)
    for index in range(2):
        _spoil(tmp_path / "shapes", "val", index, "4 columns")
    args = dict(model="yolov3-tiny.yaml", data=str(data), imgsz=32, batch=2, epochs=1, device="cpu", workers=0, optimizer="SGD",
                plots=False, verbose=False, amp=False, project=str(tmp_path / "runs"), name="p", exist_ok=True,
                prune={"method": "slr", "rate": 2.0})
    with pytest.raises(DataError) as no_valid:  # Ultralytics: RuntimeError('No valid images found in ...') over several lines
        PruneTrainer(overrides=args).train()
    message = str(no_valid.value)
    assert "\n" not in message and message.startswith(f"no usable image in {tmp_path / 'shapes' / 'labels' / 'val'}: every image or label was dropped")
    assert "labels require 5 columns, 4 columns detected" in message

    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump({"path": str(tmp_path / "shapes"), "train": "images/train", "val": "images/test", "names": {0: "a"}}))
    with pytest.raises(DataError) as not_found:  # Ultralytics: RuntimeError("Dataset '...' error ❌ ... images not found ...")
        PruneTrainer(overrides={**args, "data": str(missing)})
    message = str(not_found.value)
    assert "\n" not in message and message.isascii()
    assert message.startswith(f"Dataset '{missing}' images not found, missing path '{tmp_path / 'shapes' / 'images' / 'test'}'")
