"""The TuSimple data set as UFLD trains on it: frames resized to the model input, row-anchor and
segmentation targets, and the labels kept for the official metric."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from core.errors import DataError
from core.harness.images import open_rgb

from .augment import UFLDAugment
from .labels import GRIDING_NUM, NUM_LANES, TUSIMPLE_ROW_ANCHORS, LaneRecord, read_label_files, row_anchor_targets, segmentation_target

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "TuSimpleDataset", "load_image"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_image(path: Path):
    """The RGB frame at ``path`` (a PIL image); a missing or unreadable file is a :class:`DataError`."""
    if not path.is_file():
        raise DataError(f"image {path} named by the labels does not exist; point --data-root at the folder holding clips/")
    return open_rgb(path, "replace the file or drop its label line")


def image_to_tensor(image, input_size: tuple[int, int]) -> torch.Tensor:
    """Resize to ``input_size = (h, w)`` (bilinear), scale to [0, 1] and normalise with ImageNet statistics."""
    from PIL import Image

    h, w = input_size
    resized = image.resize((w, h), Image.BILINEAR)
    array = torch.from_numpy(np.asarray(resized, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (array - mean) / std


class TuSimpleDataset(Dataset):
    """Frames under ``root`` named by the ``label_files`` (TuSimple json lines).

    Item ``i`` is ``(image, cls_target, seg_target)``: the normalised ``(3, h, w)`` input, the
    ``(anchors, lanes)`` grid-cell classes and the ``(h/8, w/8)`` lane-slot mask. With ``cache``
    the converted items (with ``augment``, the decoded frames) are kept in memory after their
    first use. ``augment`` moves frame and lanes at random each time an item is read, drawing
    from torch's random state so that seeded runs repeat.
    """

    def __init__(self, root: str | Path, label_files: Sequence[str | Path] | None = None, records: Sequence[LaneRecord] | None = None,
                 input_size: tuple[int, int] = (288, 800), row_anchors: Sequence[float] = TUSIMPLE_ROW_ANCHORS,
                 griding_num: int = GRIDING_NUM, num_lanes: int = NUM_LANES, cache: bool = False,
                 augment: UFLDAugment | None = None) -> None:
        self.root = Path(root)
        if records is None:
            if not label_files:
                raise DataError("no TuSimple label file given; list the json-lines files in the config")
            label_paths = [p if Path(p).is_absolute() else self.root / p for p in label_files]
            records = read_label_files(label_paths)
        self.records = list(records)
        if not self.records:
            raise DataError(f"the label files under {self.root} hold no record; check the config's label files")
        self.input_size = tuple(input_size)
        self.row_anchors = tuple(row_anchors)
        self.griding_num, self.num_lanes = griding_num, num_lanes
        self.cache = cache
        self.augment = augment
        self._frames: dict[int, object] = {}
        self._items: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._sizes: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def image_path(self, index: int) -> Path:
        return self.root / self.records[index].raw_file

    def image_size(self, index: int) -> tuple[int, int]:
        """``(width, height)`` of frame ``index`` in pixels."""
        if index not in self._sizes:
            from PIL import Image

            path = self.image_path(index)
            if not path.is_file():
                raise DataError(f"image {path} named by the labels does not exist; point --data-root at the folder holding clips/")
            with Image.open(path) as image:
                self._sizes[index] = image.size
        return self._sizes[index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if index in self._items:
            return self._items[index]
        record = self.records[index]
        image = self._frames[index] if index in self._frames else load_image(self.image_path(index))
        if self.augment is not None:
            if self.cache:
                self._frames[index] = image
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
            image, record = self.augment(image, record, rng)
        width, height = image.size
        self._sizes[index] = (width, height)
        h, w = self.input_size
        item = (
            image_to_tensor(image, self.input_size),
            torch.from_numpy(row_anchor_targets(record, width, height, self.row_anchors, self.griding_num, self.num_lanes)),
            torch.from_numpy(segmentation_target(record, width, height, (h // 8, w // 8), self.num_lanes)),
        )
        if self.cache and self.augment is None:
            self._items[index] = item
        return item
