"""The pipeline's task interface for image classification (core.pipeline.Task)."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader

from core.errors import ConfigError
from core.pipeline import rng_state, seed_everything, set_rng_state
from core.results import atomic_torch_save

from .data import ClassificationData
from .metrics import topk_correct
from .models import build_model, load_checkpoint_weights

__all__ = ["ClassificationTask", "build_optimizer", "dense_cache_key"]

_OPTIMIZERS = ("adam", "sgd")


def build_optimizer(params, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Adam or SGD from ``{name, lr, momentum, weight_decay}``."""
    name = str(cfg.get("name", "adam")).lower()
    lr, decay = float(cfg.get("lr", 0.01)), float(cfg.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(cfg.get("momentum", 0.9)), weight_decay=decay,
                               nesterov=bool(cfg.get("nesterov", False)))
    raise ConfigError(f"unknown optimizer '{name}'; use one of {', '.join(_OPTIMIZERS)}")


def _build_scheduler(optimizer: torch.optim.Optimizer, name: str | None, epochs: int):
    if name in (None, "none", "constant"):
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    raise ConfigError(f"unknown scheduler '{name}'; use none or cosine")


def dense_cache_key(settings: Mapping[str, Any]) -> str:
    """A short hash of everything the dense model depends on (model, data, dense training)."""
    relevant = {k: settings.get(k) for k in ("model", "data", "dense", "batch_size")}
    return hashlib.sha1(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:10]


class ClassificationTask:
    """One classifier on one data set, with the optimizers and epochs of ``settings``.

    The dense model is, in order: loaded from ``dense_checkpoint``; read from the cache folder;
    or trained here (``dense.epochs``, with its own fixed seed) and written to the cache, so the
    runs of a table share one dense model as the paper's runs share one pretrained model.
    """

    task = "classification"

    def __init__(self, settings: Mapping[str, Any], data: ClassificationData, dense_dir: str | Path,
                 dense_checkpoint: str | Path | None = None, device: str | torch.device | None = None,
                 progress: bool = True) -> None:
        self.settings = copy.deepcopy(dict(settings))
        self.data = data
        self.dense_dir = Path(dense_dir)
        self.dense_checkpoint = None if dense_checkpoint is None else Path(dense_checkpoint)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.progress = progress
        model_cfg = self.settings["model"]
        self.model_name = model_cfg["arch"]
        self.dataset_name = data.name
        self.primary_metric = self.settings.get("primary_metric", "top1")
        if self.primary_metric not in ("top1", "top5"):
            raise ConfigError(f"primary_metric '{self.primary_metric}' is not top1 or top5")
        self.batch_size = int(self.settings.get("batch_size", 128))
        self.workers = int(self.settings.get("workers", 0))
        self._train_loader: DataLoader | None = None
        self._test_loader: DataLoader | None = None

    def config(self) -> dict[str, Any]:
        """The task settings stored in each results file."""
        out = copy.deepcopy(self.settings)
        out["dense_checkpoint"] = None if self.dense_checkpoint is None else str(self.dense_checkpoint)
        out["num_train"], out["num_test"] = len(self.data.train), len(self.data.test)
        return out

    # data -----------------------------------------------------------------------------------
    def _loader(self, train: bool) -> DataLoader:
        dataset = self.data.train if train else self.data.test
        return DataLoader(dataset, batch_size=self.batch_size if train else max(self.batch_size, 256), shuffle=train,
                          num_workers=self.workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=self.workers > 0)

    @property
    def train_loader(self) -> DataLoader:
        if self._train_loader is None:
            self._train_loader = self._loader(True)
        return self._train_loader

    @property
    def test_loader(self) -> DataLoader:
        if self._test_loader is None:
            self._test_loader = self._loader(False)
        return self._test_loader

    # the Task protocol ----------------------------------------------------------------------
    def new_model(self) -> nn.Module:
        """The architecture with fresh weights (ImageNet weights when ``model.pretrained``)."""
        cfg = self.settings["model"]
        return build_model(cfg["arch"], self.data.num_classes, float(cfg.get("width", 1.0)), cfg.get("stem", "cifar"),
                           bool(cfg.get("pretrained", False))).to(self.device)

    def dense_path(self) -> Path:
        return self.dense_dir / f"{self.model_name}_{self.dataset_name}_{dense_cache_key(self.settings)}.pt"

    def build_model(self) -> nn.Module:
        model = self.new_model()
        if self.dense_checkpoint is not None:
            load_checkpoint_weights(model, self.dense_checkpoint)
            return model
        path = self.dense_path()
        if path.is_file():
            load_checkpoint_weights(model, path)
            return model
        if int(self.settings.get("dense", {}).get("epochs", 0)) > 0:
            self._train_dense(model)
            atomic_torch_save({"model": model.state_dict(), "metrics": self.evaluate(model), "settings": self.settings}, path)
        return model

    def _train_dense(self, model: nn.Module) -> None:
        """Train from scratch with ``dense`` settings; the caller's random state is left untouched."""
        dense = self.settings["dense"]
        saved = rng_state()
        seed_everything(int(dense.get("seed", 0)))
        optimizer = build_optimizer(model.parameters(), dense.get("optimizer", self.settings["optimizer"]))
        epochs = int(dense["epochs"])
        scheduler = _build_scheduler(optimizer, dense.get("scheduler"), epochs)
        bar = _bar(epochs, f"dense {self.model_name}", self.progress)
        for epoch in range(epochs):
            loss = self.train_one_epoch(model, optimizer, epoch, "dense")
            if scheduler is not None:
                scheduler.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
        if bar is not None:
            bar.close()
        set_rng_state(saved)

    def build_optimizer(self, model: nn.Module, stage: str):
        cfg = dict(self.settings["optimizer"])
        if stage == "retrain":
            cfg.update(self.settings.get("retrain_optimizer") or {})
        optimizer = build_optimizer(model.parameters(), cfg)
        epochs = int(self.settings["pruning"]["retrain_epochs" if stage == "retrain" else "epochs"])
        return optimizer, _build_scheduler(optimizer, cfg.get("scheduler"), epochs)

    def train_one_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, stage: str) -> float:
        model.train()
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        count = 0
        loader = self.train_loader
        bar = _bar(len(loader), f"{stage} epoch {epoch + 1}", self.progress and len(loader) >= 50)
        for images, labels in loader:
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(labels)
            count += len(labels)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return float(total) / max(count, 1)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Top-1 and top-5 accuracy (%) and mean cross-entropy on the test split."""
        model.eval()
        correct = {1: torch.zeros((), device=self.device), 5: torch.zeros((), device=self.device)}
        loss = torch.zeros((), device=self.device, dtype=torch.float64)
        count = 0
        for images, labels in self.test_loader:
            images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            logits = model(images)
            loss += nn.functional.cross_entropy(logits, labels, reduction="sum")
            for k, c in topk_correct(logits, labels, (1, 5)).items():
                correct[k] += c
            count += len(labels)
        count = max(count, 1)
        return {"top1": 100.0 * float(correct[1]) / count, "top5": 100.0 * float(correct[5]) / count, "loss": float(loss) / count}


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
