"""The pipeline's task (core.harness.task.PipelineTask) for UFLD on TuSimple."""
from __future__ import annotations

import copy
import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader

from core.harness.task import BatchResult, PerIteration, PipelineTask

from .augment import UFLDAugment
from .dataset import TuSimpleDataset
from .decode import decode_lanes
from .lane_eval import LaneEvaluator
from .labels import TUSIMPLE_ROW_ANCHORS
from .losses import UFLDLoss
from .model import UFLD, UFLDConfig, load_ufld_checkpoint

__all__ = ["LaneTask", "LaneData", "build_datasets", "warmup_cosine"]


def build_datasets(config: Mapping[str, Any], data_root: Path) -> tuple[TuSimpleDataset, TuSimpleDataset]:
    """Train and test sets of ``config['data']`` under ``data_root``."""
    data = config["data"]
    model = config["model"]
    common = dict(input_size=tuple(model["input_size"]), row_anchors=_row_anchors(model), griding_num=model["griding_num"],
                  num_lanes=model["num_lanes"], cache=bool(data.get("cache", False)))
    test_root = Path(data["test_root"]) if data.get("test_root") else data_root
    if not test_root.is_absolute() and data.get("test_root"):
        test_root = data_root / test_root
    augment = UFLDAugment() if data.get("augment") else None
    return (TuSimpleDataset(data_root, data["train_labels"], augment=augment, **common),
            TuSimpleDataset(test_root, data["test_labels"], **common))


def _row_anchors(model: Mapping[str, Any]) -> tuple[float, ...]:
    count = int(model["num_anchors"])
    if count == len(TUSIMPLE_ROW_ANCHORS):
        return TUSIMPLE_ROW_ANCHORS
    step = (284 - 64) / (count - 1)
    return tuple(64 + i * step for i in range(count))


@dataclass
class LaneData:
    """The train and test frames of one TuSimple folder (real or generated)."""

    root: Path
    name: str  # tusimple or tusimple-synthetic
    train: TuSimpleDataset
    test: TuSimpleDataset


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_iters: int) -> PerIteration:
    """UFLD's ``cos`` schedule with ``linear`` warm-up (its utils/factory.py and train.py), stepped
    every iteration: after iteration g the rate is ``base * g / warmup_iters`` while g < warmup_iters,
    then ``base * (1 + cos(pi g / total_steps)) / 2``. UFLD steps it after the optimizer, so the
    first iteration runs at the base rate and iteration i >= 1 at the factor of g = i - 1."""
    total = max(1, int(total_steps))

    def factor(step: int) -> float:
        if step == 0:
            return 1.0
        g = step - 1
        if g < warmup_iters:
            return g / warmup_iters
        return (1 + math.cos(math.pi * g / total)) / 2

    return PerIteration(torch.optim.lr_scheduler.LambdaLR(optimizer, factor), total)


class LaneTask(PipelineTask):
    """UFLD on TuSimple: Adam with UFLD's warm-up and cosine schedule, UFLD's losses, the official accuracy."""

    task = "lane_tusimple"
    primary_metric = "accuracy"
    dense_keys = ("model", "data", "dense", "batch_size", "optimizer", "loss")  # what a dense model trained here depends on

    def __init__(self, settings: Mapping[str, Any], data: LaneData, device: str | torch.device = "cpu", progress: bool = True) -> None:
        self.settings = copy.deepcopy(dict(settings))
        self.data = data
        self.train_set, self.test_set = data.train, data.test
        self.dataset_name = data.name
        self.device = torch.device(device)
        self.progress = progress
        self.model_config = UFLDConfig.from_dict(self.settings["model"])
        width = self.model_config.width
        self.model_name = "ufld-resnet18" if width == 64 else f"ufld-resnet18-w{width}"
        self.loss = UFLDLoss(**self.settings["loss"])
        self.row_anchors = _row_anchors(self.settings["model"])

    # model ------------------------------------------------------------------------------
    def new_model(self) -> nn.Module:
        return UFLD(self.model_config).to(self.device)

    def load_dense(self, model: nn.Module, path: Path) -> None:
        """UFLD's released checkpoint (or a state dict of this model); a relative path is looked up under the data root."""
        if not path.is_absolute() and not path.is_file():
            path = self.data.root / path
        load_ufld_checkpoint(model, path)

    def build_optimizer(self, model: nn.Module, stage: str):
        """Adam (``retrain_optimizer`` overrides for retraining) with :func:`warmup_cosine` over the stage's iterations."""
        cfg = dict(self.settings["optimizer"])
        if stage == "retrain":
            cfg.update(self.settings.get("retrain_optimizer") or {})
        optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
        pruning = self.settings["pruning"]
        epochs = {"dense": self.settings["dense"].get("epochs", 0), "prune": pruning["epochs"], "retrain": pruning["retrain_epochs"]}[stage]
        steps = int(epochs) * len(self._loader(self.train_set, int(self.settings["batch_size"]), shuffle=False))
        return optimizer, warmup_cosine(optimizer, steps, int(cfg.get("warmup_iters", 0)))

    # training and evaluation --------------------------------------------------------------
    def _loader(self, dataset: TuSimpleDataset, batch_size: int, shuffle: bool) -> DataLoader:
        workers = min(int(self.settings.get("workers", 0)), os.cpu_count() or 1) if not dataset.cache else 0
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, drop_last=False)

    def train_batches(self, stage: str, epoch: int, seed: int) -> DataLoader:
        return self._loader(self.train_set, int(self.settings["batch_size"]), shuffle=True)

    def batch_loss(self, net: nn.Module, batch) -> BatchResult:
        """UFLD's losses, and its training top-1: grid cells (row anchor x lane) whose predicted
        location, or "no lane", is the labelled one (UFLD's MultiLabelAcc)."""
        images, cls_target, seg_target = (x.to(self.device) for x in batch)
        output = net(images)
        logits = output[0] if isinstance(output, tuple) else output
        correct = (logits.detach().argmax(1) == cls_target).sum()
        return BatchResult(self.loss(output, cls_target, seg_target), len(images), correct, cls_target.numel())

    @torch.no_grad()
    def predict(self, model: nn.Module, dataset: TuSimpleDataset) -> list[list[list[float]]]:
        """TuSimple lanes of every frame of ``dataset`` at its labels' ``h_samples``."""
        model.eval()
        lanes, index = [], 0
        for images, _, _ in itertools.islice(self._loader(dataset, int(self.settings["eval_batch_size"]), shuffle=False), self.max_batches):
            logits = model(images.to(self.device))
            for frame in logits:
                width, height = dataset.image_size(index)
                lanes.append(decode_lanes(frame, width, height, dataset.records[index].h_samples, self.row_anchors))
                index += 1
        return lanes

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        evaluator = LaneEvaluator()
        for pred, record in zip(self.predict(model, self.test_set), self.test_set.records):  # the frames predicted
            evaluator.add(pred, record.lanes, record.h_samples)
        return evaluator.result().as_percent()
