"""The pipeline's task interface for UFLD on TuSimple (core.harness.pipeline.Task)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader

from core.errors import ConfigError
from core.harness.pipeline import PruningRecipe, rng_state, set_rng_state
from core.harness.results import atomic_torch_save, load_state, read_checkpoint

from .augment import UFLDAugment
from .dataset import TuSimpleDataset
from .decode import decode_lanes
from .lane_eval import LaneEvaluator
from .labels import TUSIMPLE_ROW_ANCHORS
from .losses import UFLDLoss
from .model import UFLD, UFLDConfig, load_ufld_checkpoint

__all__ = ["LaneTask", "build_datasets", "sparsity_for_rate"]


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


def sparsity_for_rate(config: Mapping[str, Any], rate: float) -> dict[str, Any]:
    """The sparsity config (core's form) pruning the configured layers to ``rate`` x."""
    pruning = config["pruning"]
    return {"target_rate": float(rate), "include": list(pruning["include"]), "exclude": list(pruning.get("exclude") or [])}


class LaneTask:
    """UFLD on TuSimple: dense model, Adam with a cosine schedule, UFLD's losses, the official accuracy."""

    task = "lane_tusimple"
    primary_metric = "accuracy"

    def __init__(self, config: Mapping[str, Any], train_set: TuSimpleDataset, test_set: TuSimpleDataset, recipe: PruningRecipe,
                 dense_path: Path | None = None, data_root: Path | None = None, dataset_name: str = "tusimple",
                 progress: bool = True) -> None:
        self.cfg = dict(config)
        self.train_set, self.test_set = train_set, test_set
        self.recipe = recipe
        self.dense_path = dense_path
        self.data_root = data_root
        self.dataset_name = dataset_name
        self.progress = progress
        self.model_config = UFLDConfig.from_dict(self.cfg["model"])
        width = self.model_config.width
        self.model_name = "ufld-resnet18" if width == 64 else f"ufld-resnet18-w{width}"
        self.loss = UFLDLoss(**self.cfg["loss"])
        self.row_anchors = _row_anchors(self.cfg["model"])

    def config(self) -> dict[str, Any]:
        return self.cfg

    # model ------------------------------------------------------------------------------
    def new_model(self) -> nn.Module:
        """UFLD with fresh weights (the pipeline checks sparsity configs on it before any run)."""
        return UFLD(self.model_config)

    def build_model(self) -> nn.Module:
        model = self.new_model()
        dense = self.cfg["dense"]
        checkpoint = dense.get("checkpoint")
        if checkpoint:
            path = Path(checkpoint)
            if not path.is_absolute() and self.data_root is not None and not path.is_file():
                path = self.data_root / path
            load_ufld_checkpoint(model, path)
        elif self.dense_path is not None and self.dense_path.is_file():
            fix = f"delete {self.dense_path} (a dense model cached by an earlier run) or run without --resume"
            load_state(model, read_checkpoint(self.dense_path, "cached dense model", fix, weights_only=True), self.dense_path, fix)
        elif int(dense.get("epochs", 0)) > 0:
            from tqdm.auto import tqdm

            epochs = int(dense["epochs"])
            state = rng_state()  # a run starts from the same random state whether the dense model is trained or cached
            optimizer, scheduler = self._optimizer(model, self.cfg["optimizer"]["lr"], epochs)
            for epoch in tqdm(range(epochs), desc="dense training", leave=False, disable=not self.progress):
                self.train_one_epoch(model, optimizer, epoch, "dense")
                scheduler.step()
            set_rng_state(state)
            if self.dense_path is not None:
                atomic_torch_save(model.state_dict(), self.dense_path)
        else:
            raise ConfigError("no dense model: set dense.checkpoint to a UFLD TuSimple checkpoint or dense.epochs > 0")
        return model

    def _optimizer(self, model: nn.Module, lr: float, epochs: int):
        optimizer = torch.optim.Adam(model.parameters(), lr=float(lr), weight_decay=float(self.cfg["optimizer"]["weight_decay"]))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
        return optimizer, scheduler

    def build_optimizer(self, model: nn.Module, stage: str):
        if stage == "retrain":
            return self._optimizer(model, self.cfg["optimizer"]["retrain_lr"], self.recipe.retrain_epochs)
        return self._optimizer(model, self.cfg["optimizer"]["lr"], self.recipe.epochs)

    # training and evaluation --------------------------------------------------------------
    def _loader(self, dataset: TuSimpleDataset, batch_size: int, shuffle: bool) -> DataLoader:
        workers = min(int(self.cfg.get("num_workers", 0)), os.cpu_count() or 1) if not dataset.cache else 0
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, drop_last=False)

    def train_one_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, stage: str) -> float:
        model.train()
        device = next(model.parameters()).device
        total, count = 0.0, 0
        for images, cls_target, seg_target in self._loader(self.train_set, int(self.cfg["batch_size"]), shuffle=True):
            images, cls_target, seg_target = images.to(device), cls_target.to(device), seg_target.to(device)
            loss = self.loss(model(images), cls_target, seg_target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(images)
            count += len(images)
        return total / max(count, 1)

    @torch.no_grad()
    def predict(self, model: nn.Module, dataset: TuSimpleDataset) -> list[list[list[float]]]:
        """TuSimple lanes of every frame of ``dataset`` at its labels' ``h_samples``."""
        model.eval()
        device = next(model.parameters()).device
        lanes, index = [], 0
        for images, _, _ in self._loader(dataset, int(self.cfg["eval_batch_size"]), shuffle=False):
            logits = model(images.to(device))
            for frame in logits:
                width, height = dataset.image_size(index)
                lanes.append(decode_lanes(frame, width, height, dataset.records[index].h_samples, self.row_anchors))
                index += 1
        return lanes

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        evaluator = LaneEvaluator()
        for pred, record in zip(self.predict(model, self.test_set), self.test_set.records):
            evaluator.add(pred, record.lanes, record.h_samples)
        return evaluator.result().as_percent()
