"""The ImageNet loader on the real sample images (../shared/data/imagenet_sample), in the
layouts users have: ImageFolder training split; validation as ImageFolder, as a flat folder
with LOC_val_solution.csv, or as images/ with labels.csv."""
import csv
import json
import os
from pathlib import Path

import pytest
import torch

from classification.__main__ import main
from classification.data import load_data
from core.errors import DataError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def sample():
    """(image folder, rows of labels.csv) of the shared ImageNet sample; skip when absent."""
    root = os.environ.get("SLR_DATA_ROOT")
    folder = Path(root) / "imagenet_sample" if root else None
    if folder is None or not (folder / "labels.csv").is_file():
        pytest.skip("SLR_DATA_ROOT/imagenet_sample is absent; set SLR_DATA_ROOT to the shared sample data (../shared/data)")
    with open(folder / "labels.csv", newline="") as handle:
        return folder / "images", list(csv.DictReader(handle))


def _imagenet_root(tmp_path, sample, val_layout):
    """A data root of links to the sample: train/<wnid>/ plus the validation split in ``val_layout``."""
    images, rows = sample
    root = tmp_path / "imagenet"
    for row in rows:
        (root / "train" / row["wnid"]).mkdir(parents=True)
        (root / "train" / row["wnid"] / row["file"]).symlink_to(images / row["file"])
    if val_layout == "labels.csv":
        (root / "images").symlink_to(images)
        (root / "labels.csv").symlink_to(images.parent / "labels.csv")
    elif val_layout == "LOC_val_solution.csv":
        (root / "val").mkdir()
        lines = ["ImageId,PredictionString"]
        for row in rows:
            stem = row["file"].rsplit(".", 1)[0]
            (root / "val" / row["file"]).symlink_to(images / row["file"])
            lines.append(f"{stem},{row['wnid']} 10 20 100 200")
        (root / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    else:
        for row in rows:
            (root / "val" / row["wnid"]).mkdir(parents=True)
            (root / "val" / row["wnid"] / row["file"]).symlink_to(images / row["file"])
    return root


@pytest.mark.parametrize("val_layout", ["labels.csv", "LOC_val_solution.csv", "ImageFolder"])
def test_validation_labels_follow_the_training_classes(tmp_path, sample, val_layout):
    root = _imagenet_root(tmp_path, sample, val_layout)
    data = load_data({"name": "imagenet", "image_size": 32}, root)
    wnids = sorted(row["wnid"] for row in sample[1])
    assert data.num_classes == 100 and list(data.classes) == wnids
    assert len(data.train) == len(data.test) == 100
    for index in (0, 37, 99):  # every image is its own class; the label is its wnid's place among the training classes
        image, label = data.test[index]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert label == index
    assert abs(float(data.test[5][0].mean())) < 3  # normalised pixels, not raw bytes


def test_a_wnid_outside_the_training_classes_is_a_user_error(tmp_path, sample):
    root = _imagenet_root(tmp_path, sample, "LOC_val_solution.csv")
    text = (root / "LOC_val_solution.csv").read_text().replace("n01440764 10", "n99999999 10")
    (root / "LOC_val_solution.csv").write_text(text)
    with pytest.raises(DataError, match="line 2: class 'n99999999' is not among the 100 training classes"):
        load_data({"name": "imagenet"}, root)


def test_short_imagenet_run_on_the_sample(tmp_path, sample):
    """The paper profile's ResNet-18 ImageNet experiment, end to end on the real sample (tiny settings)."""
    root = _imagenet_root(tmp_path, sample, "labels.csv")
    tiny = ["data.image_size=32", "model.width=0.0625", "model.pretrained=false", "batch_size=50", "workers=0",
            "dense.epochs=1", "pruning.epochs=1", "pruning.retrain_epochs=1", "rates=[6.5]"]
    main(["--table", "table1", "--experiment", "r18_imagenet", "--profile", "paper", "--data-root", str(root),
          "--method", "slr", "--seed", "0", "--out", str(tmp_path / "runs"), "--no-progress", "--threads", "1",
          *sum((["--set", s] for s in tiny), [])])
    results = json.loads(next((tmp_path / "runs").rglob("results.json")).read_text())
    assert results["dataset"] == "imagenet" and results["primary_metric"] == "top5"
    assert results["config"]["task"]["num_test"] == 100
    assert abs(results["achieved_compression"]["pruned_layers"] - 6.5) < 0.01
    for stage in ("dense", "after_hard_pruning", "after_retraining"):
        assert 0 <= results["metrics"][stage]["top1"] <= results["metrics"][stage]["top5"] <= 100
