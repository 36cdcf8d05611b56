"""Data for detection_yolo: the generated shapes set, the COCO128 view, data YAML checks."""
import tempfile

import numpy as np
import pytest
import yaml

from detection_yolo.ultralytics_env import prepare_ultralytics

prepare_ultralytics(tempfile.mkdtemp(prefix="yolo_cfg_"))  # before anything imports Ultralytics

from core.errors import ConfigError, DataError  # noqa: E402
from detection_yolo.data import SHAPE_NAMES, _draw_shape, coco128_data_yaml, generate_shapes_dataset, read_labels  # noqa: E402
from detection_yolo.data_check import check_splits, resolve_data_yaml  # noqa: E402
from detection_yolo.models import model_yaml  # noqa: E402


def test_square_box_is_the_painted_extent():
    canvas = np.zeros((20, 20, 3), np.uint8)
    box = _draw_shape(canvas, 0, 10.0, 10.0, 4.0, np.array([255, 0, 0], np.uint8))
    assert box == (8.0, 8.0, 13.0, 13.0)  # |x - 10| <= 2 covers pixels 8..12
    assert canvas[..., 0].astype(bool).sum() == 25


def test_triangle_apex_at_top_and_base_widest():
    canvas = np.zeros((40, 40, 3), np.uint8)
    x0, y0, x1, y1 = _draw_shape(canvas, 2, 20.0, 20.0, 20.0, np.array([0, 255, 0], np.uint8))
    rows = canvas[..., 1].astype(bool).sum(axis=1)
    assert (y0, y1) == (10.0, 31.0)
    assert rows[10] == 1 and rows[30] == rows.max() == 21


def test_generated_labels_match_pixels(tmp_path):
    data = generate_shapes_dataset(tmp_path, n_train=6, n_val=2, imgsz=64, seed=3, max_objects=1)
    spec = yaml.safe_load(data.read_text())
    assert spec["names"] == dict(enumerate(SHAPE_NAMES))
    from PIL import Image

    images = sorted((tmp_path / "images" / "train").glob("*.png"))
    assert len(images) == 6 and len(list((tmp_path / "images" / "val").glob("*.png"))) == 2
    for image in images:
        labels = read_labels(tmp_path / "labels" / "train" / f"{image.stem}.txt")
        assert labels.shape == (1, 5) and 0 <= labels[0, 0] < 3
        assert np.all((labels[:, 1:] > 0) & (labels[:, 1:] <= 1))
        pixels = np.asarray(Image.open(image)).astype(int)
        bright = pixels.min(axis=2) >= 140  # shapes are painted with every channel >= 140, backgrounds stay below
        ys, xs = np.nonzero(bright)
        cx, cy, w, h = labels[0, 1:] * 64
        assert abs((xs.min() + xs.max() + 1) / 2 - cx) < 0.01 and abs(xs.max() + 1 - xs.min() - w) < 0.01
        assert abs((ys.min() + ys.max() + 1) / 2 - cy) < 0.01 and abs(ys.max() + 1 - ys.min() - h) < 0.01


def test_generation_is_deterministic(tmp_path):
    generate_shapes_dataset(tmp_path / "a", 3, 1, 32, seed=5)
    generate_shapes_dataset(tmp_path / "b", 3, 1, 32, seed=5)
    for label in (tmp_path / "a" / "labels" / "train").glob("*.txt"):
        assert label.read_text() == (tmp_path / "b" / "labels" / "train" / label.name).read_text()


def test_resolve_data_yaml_names_the_missing_folder(tmp_path):
    with pytest.raises(DataError, match="not found"):
        resolve_data_yaml(tmp_path / "coco.yaml", tmp_path / "out")
    (tmp_path / "coco.yaml").write_text(f"path: {tmp_path}\ntrain: images/train2014\nval: images/val2014\nnames: {{0: person}}\n")
    with pytest.raises(DataError, match="train2014 does not exist"):
        resolve_data_yaml(tmp_path / "coco.yaml", tmp_path / "out")
    (tmp_path / "images" / "train2014").mkdir(parents=True)
    (tmp_path / "images" / "val2014").mkdir(parents=True)
    resolved = yaml.safe_load(resolve_data_yaml(tmp_path / "coco.yaml", tmp_path / "out").read_text())
    assert resolved["names"] == {0: "person"} and resolved["train"] == str(tmp_path / "images" / "train2014")


def test_model_yaml_width(tmp_path):
    assert model_yaml("yolov3-spp", tmp_path).name == "yolov3-spp.yaml"
    narrow = yaml.safe_load(model_yaml("yolov3-spp", tmp_path, 0.25).read_text())
    assert narrow["width_multiple"] == 0.25
    with pytest.raises(ConfigError, match="unknown model"):
        model_yaml("yolov99z", tmp_path)


def test_coco128_view_copies_labels_so_caches_stay_in_the_view(data_root, tmp_path):
    source = data_root / "coco128"
    if not source.is_dir():
        pytest.skip(f"{source} is absent")
    before = {p.name: p.stat().st_mtime_ns for p in (source / "labels").iterdir()}
    data = coco128_data_yaml(source, tmp_path / "coco128")
    spec = yaml.safe_load(data.read_text())
    assert len(spec["names"]) == 80 and spec["names"][0] == "person"
    images = list((tmp_path / "coco128" / "images" / "train2017").glob("*.jpg"))
    labels = list((tmp_path / "coco128" / "labels" / "train2017").glob("*.txt"))
    assert len(images) == 128 and 100 < len(labels) <= 128
    assert not any(label.is_symlink() for label in labels) and not (tmp_path / "coco128" / "labels" / "train2017").is_symlink()
    first = read_labels(labels[0])
    assert first.shape[1] == 5 and np.all(first[:, 0] < 80) and np.all((first[:, 1:] >= 0) & (first[:, 1:] <= 1))
    assert (tmp_path / "coco128" / "images").is_dir() and not (tmp_path / "coco128" / "images" / "train2017").is_symlink()

    from ultralytics.data import build_yolo_dataset
    from ultralytics.cfg import get_cfg
    from ultralytics.data.utils import check_det_dataset

    checked = check_det_dataset(str(data))  # Ultralytics' own reading of the YAML, then of the labels
    dataset = build_yolo_dataset(get_cfg(overrides={"imgsz": 64}), checked["train"], 4, checked, mode="val")
    assert len(dataset) == 128
    assert (tmp_path / "coco128" / "labels" / "train2017.cache").is_file()  # the cache lands in the view
    assert {p.name: p.stat().st_mtime_ns for p in (source / "labels").iterdir()} == before  # the source is untouched
    reports = check_splits(data, log=None)
    assert [(r.split, r.images, len(r.dropped)) for r in reports] == [("train", 128, 0), ("val", 128, 0)]
