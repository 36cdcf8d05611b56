"""Loaders: CIFAR-10 pickles and image folders written by the test, the digits smoke set, and the
shared CIFAR-10 image folder when $SLR_DATA_ROOT holds it."""
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from classification.data import (CIFAR10_CLASSES, TensorImageSet, load_data, load_digits_images, read_cifar_pickles,
                                 read_image_folder, subset_indices)
from core.errors import DataError


def _write_cifar_batches(folder: Path, per_batch: int = 3) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(per_batch)]
        with (folder / name).open("wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": [f"{j}.png" for j in range(per_batch)]}, f)
        written[name] = (data, labels)
    return written


def test_cifar_pickles_roundtrip(tmp_path):
    written = _write_cifar_batches(tmp_path / "cifar-10-batches-py")
    images, labels = read_cifar_pickles(tmp_path / "cifar-10-batches-py", train=True)
    assert images.shape == (15, 3, 32, 32) and images.dtype == torch.uint8
    data, batch_labels = written["data_batch_2"]
    # CIFAR rows are 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    n, c, y, x = 1, 2, 5, 7
    assert int(images[3 + n, c, y, x]) == int(data[n, c * 1024 + y * 32 + x])
    assert labels.tolist()[3:6] == batch_labels
    test_images, test_labels = read_cifar_pickles(tmp_path / "cifar-10-batches-py", train=False)
    assert test_images.shape == (3, 3, 32, 32)
    assert torch.equal(test_images[0].permute(1, 2, 0).reshape(-1, 3)[:, 0], torch.from_numpy(written["test_batch"][0][0, :1024]))


def test_load_data_finds_pickles_and_normalizes(tmp_path):
    _write_cifar_batches(tmp_path / "cifar-10-batches-py")
    data = load_data({"name": "cifar10", "augment": False, "train_subset": 10}, tmp_path)
    assert (len(data.train), len(data.test), data.num_classes) == (10, 3, 10)
    assert data.classes == CIFAR10_CLASSES
    stacked = torch.stack([data.train[i][0] for i in range(len(data.train))])
    assert torch.allclose(stacked.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)  # normalized by the train statistics


def test_missing_pickle_batch_is_a_data_error(tmp_path):
    _write_cifar_batches(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        read_cifar_pickles(tmp_path / "cifar-10-batches-py", train=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="neither"):
        load_data({"name": "cifar10"}, empty)
    with pytest.raises(DataError, match="needs a data root"):
        load_data({"name": "cifar10"}, None)


def test_image_folder_loader_reads_pixels_and_labels(tmp_path):
    colors = {"cat": (255, 0, 0), "airplane": (0, 128, 255), "dog": (10, 20, 30)}
    for split in ("train", "test"):
        for name, color in colors.items():
            (tmp_path / split / name).mkdir(parents=True)
            for k in range(2):
                Image.new("RGB", (32, 32), tuple(v // (k + 1) for v in color)).save(tmp_path / split / name / f"{k:04d}.png")
    images, labels, classes = read_image_folder(tmp_path / "train")
    assert classes == ["airplane", "cat", "dog"]  # sorted, like torchvision's ImageFolder
    assert images.shape == (6, 3, 32, 32) and labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert images[2, :, 4, 4].tolist() == [255, 0, 0] and images[3, :, 0, 0].tolist() == [127, 0, 0]
    sub, sub_labels, _ = read_image_folder(tmp_path / "train", size=4)
    assert sub.shape[0] == 4 and sub_labels.tolist() == sorted(sub_labels.tolist())
    data = load_data({"name": "cifar10", "augment": False}, tmp_path)
    assert (len(data.train), len(data.test), data.classes) == (6, 6, ("airplane", "cat", "dog"))
    with pytest.raises(DataError, match="does not exist"):
        read_image_folder(tmp_path / "val")


def test_subset_indices_are_seeded_and_sorted():
    a, b = subset_indices(100, 10), subset_indices(100, 10)
    assert torch.equal(a, b) and len(set(a.tolist())) == 10 and a.tolist() == sorted(a.tolist())


def test_digits_smoke_set():
    (train_x, train_y), (test_x, test_y) = load_digits_images(image_size=12, train_size=1400)
    assert train_x.shape == (1400, 3, 12, 12) and test_x.shape == (397, 3, 12, 12)
    assert train_x.dtype == torch.uint8 and set(train_y.tolist()) == set(range(10))
    assert torch.equal(train_x[:, 0], train_x[:, 2])  # grey copied to three channels


def test_augmentation_keeps_shape_and_pixels():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).remainder(256).to(torch.uint8).view(2, 3, 8, 8)
    plain = TensorImageSet(images, torch.tensor([0, 1]), [0, 0, 0], [1 / 255] * 3)
    x, y = plain[1]
    assert torch.equal(x, images[1].float()) and int(y) == 1  # mean 0, std 1/255: raw pixel values
    augmented = TensorImageSet(images, torch.tensor([0, 1]), [0, 0, 0], [1 / 255] * 3, augment=True, pad=2)
    torch.manual_seed(0)
    for _ in range(5):
        assert augmented[0][0].shape == (3, 8, 8)


def _shared_cifar() -> Path:
    root = os.environ.get("SLR_DATA_ROOT")
    if not root:
        pytest.skip("SLR_DATA_ROOT is not set; it names the shared sample data (../shared/data)")
    path = Path(root) / "cifar10"
    if not (path / "train").is_dir():
        pytest.skip(f"{path}/train is absent; the shared CIFAR-10 image folder is needed")
    return path


def test_shared_cifar10_image_folder():
    path = _shared_cifar()
    images, labels, classes = read_image_folder(path / "test", size=50)
    assert tuple(classes) == CIFAR10_CLASSES
    assert images.shape == (50, 3, 32, 32) and images.dtype == torch.uint8
    assert 0 <= labels.min() and labels.max() <= 9
    assert 20 < images.float().mean() < 235  # real pixels, not blank files
