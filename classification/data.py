"""Classification data: CIFAR-10 (torchvision's pickles or an image-folder layout), ImageNet
(ImageFolder training split; validation as ImageFolder or a flat folder with a labels CSV) and the smoke set (scikit-learn's handwritten digits as small RGB images).

Small-image sets are held in memory as uint8 tensors and augmented per item (random crop with
4-pixel padding and horizontal flip, CIFAR's usual training augmentation).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from core.errors import ConfigError, DataError
from core.harness.images import open_rgb

__all__ = ["ClassificationData", "TensorImageSet", "LabelledImages", "read_imagenet_labels", "load_data", "load_digits_images", "read_cifar_pickles",
           "read_image_folder", "subset_indices", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_CIFAR_PICKLE_DIR = "cifar-10-batches-py"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class TensorImageSet(Dataset):
    """uint8 images ``N x 3 x H x W`` with labels; items are normalized float tensors.

    ``augment`` applies a random crop from the image padded by ``pad`` pixels and a random
    horizontal flip.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 augment: bool = False, pad: int = 4) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise DataError(f"images must be uint8 N x 3 x H x W, got {tuple(images.shape)} {images.dtype}")
        if len(images) != len(labels):
            raise DataError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels.long()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1) * 255
        self.augment, self.pad = augment, pad
        self._padded = torch.nn.functional.pad(images, (pad,) * 4) if augment and pad else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.augment:
            if self._padded is not None:
                h, w = image.shape[1:]
                top, left = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
                image = self._padded[index, :, top:top + h, left:left + w]
            if torch.rand(()) < 0.5:
                image = image.flip(-1)
        return (image.float() - self.mean) / self.std, self.labels[index]


@dataclass
class ClassificationData:
    """Train and test splits of one data set."""

    name: str
    train: Dataset
    test: Dataset
    num_classes: int
    classes: tuple[str, ...]


def subset_indices(count: int, size: int | None, seed: int = 0) -> torch.Tensor:
    """The first ``size`` indices of a seeded permutation of ``range(count)`` (all when None)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    if size is None:
        return order.sort().values
    if size <= 0 or size > count:
        raise ConfigError(f"subset size {size} must be between 1 and {count}, the number of images there; "
                          "lower data.train_subset / data.test_subset")
    return order[:size].sort().values


def _channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    values = images.float().div_(255).transpose(0, 1).reshape(3, -1)
    return values.mean(1).tolist(), values.std(1).clamp_min(1e-3).tolist()


def _tensor_sets(name: str, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                 classes: Sequence[str], augment: bool, pad: int) -> ClassificationData:
    mean, std = _channel_stats(train[0])  # normalization from the training images actually used
    return ClassificationData(name, TensorImageSet(*train, mean, std, augment=augment, pad=pad),
                              TensorImageSet(*test, mean, std), len(classes), tuple(classes))


# --- the smoke set ----------------------------------------------------------------------------
def load_digits_images(image_size: int = 16, train_size: int = 1400, test_size: int | None = None) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """scikit-learn's 1,797 handwritten digits as uint8 RGB images of ``image_size`` pixels.

    The 8x8 grey images are upscaled (bilinear) to ``image_size`` and copied to three channels;
    a fixed permutation gives ``train_size`` training and the rest (or ``test_size`` of them) test images.
    """
    from sklearn.datasets import load_digits

    if image_size < 8:
        raise ConfigError(f"digits image_size {image_size} must be >= 8 (the originals are 8x8)")
    x, y = load_digits(return_X_y=True)
    grey = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    if image_size != 8:
        grey = torch.nn.functional.interpolate(grey, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = (grey.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.tensor(y)
    if not 0 < train_size < len(labels):
        raise ConfigError(f"digits train_size {train_size} must be between 1 and {len(labels) - 1}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train, test = order[:train_size], order[train_size:]
    if test_size is not None:
        if not 0 < test_size <= len(test):
            raise ConfigError(f"digits test_size {test_size} must be between 1 and {len(test)}")
        test = test[:test_size]
    return (images[train], labels[train]), (images[test], labels[test])


# --- CIFAR-10 -------------------------------------------------------------------------------
def read_cifar_pickles(folder: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (uint8 ``N x 3 x 32 x 32``) and labels from the python-pickle batches of CIFAR-10
    (``data_batch_1..5`` or ``test_batch`` in ``folder``)."""
    folder = Path(folder)
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise DataError(f"CIFAR-10 batch {path} is missing; download with --set data.download=true or point --data-root at the folder holding {_CIFAR_PICKLE_DIR}")
        try:
            with path.open("rb") as handle:
                batch = pickle.load(handle, encoding="latin1")
            data = np.asarray(batch["data"], dtype=np.uint8)
            targets = batch["labels"] if "labels" in batch else batch["fine_labels"]
        except (pickle.UnpicklingError, KeyError, EOFError, TypeError, ValueError) as err:
            raise DataError(f"{path} is not a CIFAR-10 pickle batch ({type(err).__name__}); re-download the data set") from None
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(targets) != len(data):
            raise DataError(f"{path}: expected N x 3072 pixel rows and N labels, got {data.shape} and {len(targets)}")
        images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
        labels.append(torch.as_tensor(targets, dtype=torch.long))
    return torch.cat(images), torch.cat(labels)


def _list_image_folder(split_dir: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    if not split_dir.is_dir():
        raise DataError(f"image folder {split_dir} does not exist; the layout is <root>/{{train,test}}/<class>/*.jpg")
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{split_dir} has no class folders; the layout is <root>/{{train,test}}/<class>/*.jpg")
    items = [(f, i) for i, c in enumerate(classes) for f in sorted((split_dir / c).iterdir()) if f.suffix.lower() in _IMAGE_SUFFIXES]
    if not items:
        raise DataError(f"{split_dir} holds no images (*.jpg, *.png); check --data-root")
    present = {label for _, label in items}
    empty = [c for i, c in enumerate(classes) if i not in present]
    if empty:
        raise DataError(f"class folder {split_dir / empty[0]} holds no images (*.jpg, *.png); "
                        "add its images or remove the folder (every class needs images)")
    return classes, items


def read_image_folder(split_dir: str | Path, size: int | None = None, seed: int = 0,
                      image_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images (uint8 ``N x 3 x H x W``), labels and class names from ``split_dir/<class>/*.jpg``.

    ``size`` keeps a seeded random subset before decoding; ``image_size`` resizes images whose
    size differs (all must match otherwise).
    """
    from PIL import Image

    classes, items = _list_image_folder(Path(split_dir))
    keep = subset_indices(len(items), size, seed)
    images, labels = [], []
    for index in keep.tolist():
        path, label = items[index]
        img = open_rgb(path, "remove or replace the file")
        if image_size is not None and img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.BILINEAR)
        array = np.asarray(img, dtype=np.uint8)
        if images and array.shape != images[0].shape:
            raise DataError(f"{path} is {array.shape[1]}x{array.shape[0]}, others {images[0].shape[1]}x{images[0].shape[0]}; set data.image_size to resize")
        images.append(array)
        labels.append(label)
    stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return stacked, torch.tensor(labels), classes


def _cifar_format(root: Path) -> tuple[str, Path]:
    for folder in (root / _CIFAR_PICKLE_DIR, root):
        if (folder / "test_batch").is_file():
            return "pickles", folder
    if (root / "train").is_dir():
        return "folder", root
    raise DataError(f"{root} holds neither CIFAR-10 pickles ({_CIFAR_PICKLE_DIR}/data_batch_*) nor an image folder (train/<class>/*.jpg); "
                    "check --data-root or set data.download=true")


def _load_cifar10(root: Path, cfg: Mapping[str, Any]) -> ClassificationData:
    if cfg.get("download") and not (root / _CIFAR_PICKLE_DIR / "test_batch").is_file():
        import torchvision  # users with a network: torchvision fetches the pickles

        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    fmt, folder = _cifar_format(root)
    requested = cfg.get("format", "auto")
    if requested not in ("auto", fmt):
        raise DataError(f"data.format is '{requested}' but {root} holds CIFAR-10 as {fmt}; set data.format=auto")
    train_size, test_size = cfg.get("train_subset"), cfg.get("test_subset")
    if fmt == "pickles":
        train, test = read_cifar_pickles(folder, True), read_cifar_pickles(folder, False)
        keep_train = subset_indices(len(train[1]), train_size)
        keep_test = subset_indices(len(test[1]), test_size)
        train = (train[0][keep_train], train[1][keep_train])
        test = (test[0][keep_test], test[1][keep_test])
        classes: Sequence[str] = CIFAR10_CLASSES
    else:
        *train, classes = read_image_folder(folder / "train", train_size, image_size=32)
        *test, test_classes = read_image_folder(folder / "test", test_size, image_size=32)
        if test_classes != classes:
            raise DataError(f"{folder}: train and test have different class folders; they must match")
    return _tensor_sets("cifar10", tuple(train), tuple(test), classes, augment=cfg.get("augment", True), pad=4)


class LabelledImages(Dataset):
    """Image files with their class indices (ImageNet's flat validation layouts); items are
    ``(transform(RGB image), label)`` like torchvision's ImageFolder."""

    def __init__(self, samples: Sequence[tuple[Path, int]], classes: Sequence[str], transform: Any = None) -> None:
        self.samples, self.classes, self.transform = list(samples), list(classes), transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        image = open_rgb(path, "remove or replace the file")
        return (self.transform(image) if self.transform else image), label


def read_imagenet_labels(csv_path: Path, image_dir: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    """``(image path, class index)`` rows of a labels CSV, the class found by its wnid in ``classes``
    (the training classes in sorted-wnid order). Two forms are read: ``file,wnid[,...]`` and
    ImageNet's ``ImageId,PredictionString`` (LOC_val_solution.csv, whose first token is the wnid)."""
    import csv

    index = {wnid: i for i, wnid in enumerate(classes)}
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    samples = []
    for line, row in enumerate(rows, start=2):
        if "file" in row and "wnid" in row:
            name, wnid = row["file"], row["wnid"]
        elif "ImageId" in row and "PredictionString" in row:
            name, wnid = row["ImageId"] + ".JPEG", (row["PredictionString"] or "").split(" ")[0]
        else:
            raise DataError(f"{csv_path}: expected columns file,wnid or ImageId,PredictionString; got {sorted(row)}")
        if wnid not in index:
            raise DataError(f"{csv_path} line {line}: class {wnid!r} is not among the {len(classes)} training classes; "
                            "train and validation must have the same classes")
        path = image_dir / name
        if not path.is_file():
            raise DataError(f"{csv_path} line {line}: image {path} does not exist; check the data root")
        samples.append((path, index[wnid]))
    if not samples:
        raise DataError(f"{csv_path} lists no images; check the labels file")
    return samples


def _imagenet_validation(root: Path, classes: Sequence[str], transform: Any) -> Dataset:
    """The validation split in one of three layouts (checked in this order): ``val/<wnid>/*.JPEG``
    (or ``test/``), flat ``val/*.JPEG`` with ``LOC_val_solution.csv``, or ``images/`` with
    ``labels.csv`` (file, wnid)."""
    import torchvision

    for name in ("val", "test"):
        folder = root / name
        if folder.is_dir() and any(p.is_dir() for p in folder.iterdir()):
            split = torchvision.datasets.ImageFolder(str(folder), transform=transform)
            if list(split.classes) != list(classes):
                raise DataError(f"{folder} has {len(split.classes)} class folders, train has {len(classes)}; they must be the same wnids")
            return split
    for csv_name, image_dir in (("LOC_val_solution.csv", root / "val"), ("labels.csv", root / "images")):
        if (root / csv_name).is_file() and image_dir.is_dir():
            return LabelledImages(read_imagenet_labels(root / csv_name, image_dir, classes), classes, transform)
    raise DataError(f"no ImageNet validation split under {root}; the layouts are val/<wnid>/*.JPEG, "
                    "val/*.JPEG with LOC_val_solution.csv, or images/ with labels.csv")


def _load_imagenet(root: Path, cfg: Mapping[str, Any]) -> ClassificationData:
    import torchvision
    from torchvision import transforms as T

    size = int(cfg.get("image_size", 224))
    normalize = T.Normalize(_IMAGENET_MEAN, _IMAGENET_STD)
    train_tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(), normalize])
    test_tf = T.Compose([T.Resize(int(size * 256 / 224)), T.CenterCrop(size), T.ToTensor(), normalize])
    if not (root / "train").is_dir():
        raise DataError(f"ImageNet folder {root}/train is missing; the layout is <root>/train/<wnid>/*.JPEG and a validation split")
    splits = {"train": torchvision.datasets.ImageFolder(str(root / "train"), transform=train_tf)}
    classes = tuple(splits["train"].classes)
    splits["val"] = _imagenet_validation(root, classes, test_tf)
    for split, key in (("train", "train_subset"), ("val", "test_subset")):
        if cfg.get(key):
            splits[split] = torch.utils.data.Subset(splits[split], subset_indices(len(splits[split]), cfg[key]).tolist())
    return ClassificationData("imagenet", splits["train"], splits["val"], len(classes), classes)


def load_data(cfg: Mapping[str, Any], data_root: Path | None) -> ClassificationData:
    """The data set named by ``cfg['name']`` (``digits``, ``cifar10``, ``imagenet``)."""
    name = cfg.get("name")
    if name == "digits":
        test_size = cfg.get("test_size")
        train, test = load_digits_images(int(cfg.get("image_size", 16)), int(cfg.get("train_size", 1400)),
                                         None if test_size is None else int(test_size))
        return _tensor_sets("sklearn-digits", train, test, [str(i) for i in range(10)], augment=cfg.get("augment", True), pad=int(cfg.get("pad", 2)))
    if name not in ("cifar10", "imagenet"):
        raise ConfigError(f"unknown data set '{name}'; use digits, cifar10 or imagenet")
    if data_root is None:
        raise DataError(f"{name} needs a data root: pass --data-root PATH or set DATA_ROOT (the smoke profile needs neither)")
    if not data_root.is_dir():
        raise DataError(f"data root {data_root} does not exist; pass --data-root pointing at the {name} folder")
    return _load_cifar10(data_root, cfg) if name == "cifar10" else _load_imagenet(data_root, cfg)
