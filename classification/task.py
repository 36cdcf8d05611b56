"""The pipeline's task for image classification (a core.harness.task.PipelineTask).

Under ``torchrun`` the model trains in DistributedDataParallel with batch norm over the global
batch, each rank takes its share of every global batch, and evaluation sums are reduced over
ranks, so every rank holds the same model, pruner and random state as one process would. Each
epoch's shuffle seed is drawn from the run's random state and each image's augmentation is
drawn from (that seed, its index) alone: the run is the same on any number of ranks (up to
floating-point summation order) and resumes from a checkpoint to the same numbers.
"""
from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from core.errors import ConfigError
from core.harness import distributed
from core.harness.task import BatchResult, PipelineTask

from .data import ClassificationData, subset_indices
from .metrics import topk_correct
from .models import build_model, load_checkpoint_weights

__all__ = ["ClassificationTask", "SeededItems", "build_optimizer"]

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


class SeededItems(Dataset):
    """A data set indexed by ``(seed, index)`` pairs (:class:`core.harness.distributed.ShardedEpochSampler`):
    each item's random augmentation is drawn from a generator seeded by the pair alone, and the
    caller's random state is left as it was."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]):
        seed, index = key
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed((seed * 1_000_003 + index) % (2**63 - 1))
            return self.dataset[index]


class ClassificationTask(PipelineTask):
    """One classifier on one data set, with the optimizers and epochs of ``settings``.

    The dense model comes from core's dense step (core.harness.dense): ``dense.checkpoint``, the
    cache, or ``dense.epochs`` of training here; with ``dense.epochs: 0`` and ``model.pretrained``
    torchvision's ImageNet weights are the dense model.

    ``batch_size`` is the global batch: under torchrun each of W ranks trains on ``batch_size / W``
    images per step. ``sync_bn`` (default true) makes batch norm use the global batch's statistics
    when several ranks train, as one process would.
    """

    task = "classification"

    def __init__(self, settings: Mapping[str, Any], data: ClassificationData, device: str | torch.device | None = None,
                 progress: bool = True) -> None:
        self.settings = copy.deepcopy(dict(settings))
        self.data = data
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.progress = progress and distributed.is_main()
        self.world, self.rank = distributed.world_size(), distributed.rank()
        model_cfg = self.settings["model"]
        self.model_name = model_cfg["arch"]
        self.dataset_name = data.name
        self.primary_metric = self.settings.get("primary_metric", "top1")
        if self.primary_metric not in ("top1", "top5"):
            raise ConfigError(f"primary_metric '{self.primary_metric}' is not top1 or top5")
        self.batch_size = int(self.settings.get("batch_size", 128))
        if self.batch_size < 1 or self.batch_size % self.world:
            raise ConfigError(f"batch_size {self.batch_size} is the global batch and must be a positive multiple of the "
                              f"{self.world} processes; set --set batch_size=... or change --nproc_per_node")
        self.sync_bn = bool(self.settings.get("sync_bn", True))
        self.workers = int(self.settings.get("workers", 0))
        self.channels_last = bool(self.settings.get("channels_last", False))
        self._train_loaders: dict[bool, DataLoader] = {}
        self._test_loader: DataLoader | None = None
        self._ddp: nn.Module | None = None

    def config(self) -> dict[str, Any]:
        """The task settings stored in each results file."""
        out = copy.deepcopy(self.settings)
        out["num_train"], out["num_test"] = len(self.data.train), len(self.data.test)
        return out

    # data -----------------------------------------------------------------------------------
    def _train_set(self, dense: bool) -> Dataset:
        """The training split; the pruning and retraining stages use ``data.prune_subset`` images
        of it when that is set (a fixed seeded subset, the same for every run), the dense stage all."""
        size = self.settings["data"].get("prune_subset")
        if dense or size is None:
            return self.data.train
        return Subset(self.data.train, subset_indices(len(self.data.train), int(size)).tolist())  # type: ignore[arg-type]

    def _loader(self, train: bool, dense: bool = False) -> DataLoader:
        common = dict(num_workers=self.workers, pin_memory=self.device.type == "cuda", persistent_workers=self.workers > 0)
        if train:  # this rank's share of each global batch; the seed is set every epoch
            images = self._train_set(dense)
            sampler = distributed.ShardedEpochSampler(len(images), self.rank, self.world)  # type: ignore[arg-type]
            return DataLoader(SeededItems(images), batch_size=self.batch_size // self.world, sampler=sampler, **common)
        test = self.data.test
        if self.world > 1:  # disjoint shards; evaluate() sums over ranks
            test = Subset(test, distributed.shard_indices(len(test)))  # type: ignore[arg-type]
        eval_batch = self.settings["data"].get("eval_batch_size") or max(self.batch_size, 256)  # data.eval_batch_size: optional
        return DataLoader(test, batch_size=int(eval_batch), shuffle=False, **common)

    def train_loader(self, stage: str) -> DataLoader:
        """The training loader of ``stage`` ("dense", "prune" or "retrain")."""
        dense = stage == "dense"
        if dense not in self._train_loaders:
            self._train_loaders[dense] = self._loader(True, dense)
        return self._train_loaders[dense]

    def _batch(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    @property
    def test_loader(self) -> DataLoader:
        if self._test_loader is None:
            self._test_loader = self._loader(False)
        return self._test_loader

    # the pipeline's hooks -------------------------------------------------------------------
    def new_model(self) -> nn.Module:
        """The architecture with fresh weights (ImageNet weights when ``model.pretrained``, unless a
        ``dense.checkpoint`` replaces them: they are then not fetched)."""
        cfg = self.settings["model"]
        pretrained = bool(cfg.get("pretrained", False)) and not (self.settings.get("dense") or {}).get("checkpoint")
        model = build_model(cfg["arch"], self.data.num_classes, float(cfg.get("width", 1.0)), cfg.get("stem", "cifar"),
                            pretrained).to(self.device)
        if self.channels_last:  # NHWC convolutions: about 1.7x faster on a CPU (oneDNN); same parameters
            model = model.to(memory_format=torch.channels_last)
        return distributed.convert_sync_batchnorm(model, self.device) if self.sync_bn else model

    @property
    def dense_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        """What a dense model trained here depends on; the pruning ``optimizer`` too when ``dense``
        names none of its own (it then trains the dense model)."""
        keys = ("model", "data", "dense", "batch_size")
        return keys if "optimizer" in (self.settings.get("dense") or {}) else (*keys, "optimizer")

    def has_trained_weights(self) -> bool:
        """torchvision's ImageNet weights are a dense model of their own."""
        return bool(self.settings["model"].get("pretrained", False))

    def load_dense(self, model: nn.Module, path: Path) -> None:
        load_checkpoint_weights(model, path)

    def build_optimizer(self, model: nn.Module, stage: str):
        """``optimizer`` (``dense.optimizer`` for the dense model; ``retrain_optimizer`` overrides for
        retraining) and its per-epoch ``scheduler`` (none or cosine) over the stage's epochs."""
        if stage == "dense":
            dense = self.settings["dense"]
            cfg = dict(dense.get("optimizer", self.settings["optimizer"]))
            optimizer = build_optimizer(model.parameters(), cfg)
            return optimizer, _build_scheduler(optimizer, dense.get("scheduler"), int(dense["epochs"]))
        cfg = dict(self.settings["optimizer"])
        if stage == "retrain":
            cfg.update(self.settings.get("retrain_optimizer") or {})
        optimizer = build_optimizer(model.parameters(), cfg)
        epochs = int(self.settings["pruning"]["retrain_epochs" if stage == "retrain" else "epochs"])
        return optimizer, _build_scheduler(optimizer, cfg.get("scheduler"), epochs)

    def training_module(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel under torchrun, else itself."""
        if self.world == 1:
            return model
        if self._ddp is None or self._ddp.module is not model:
            # with global-batch norm the buffers agree on every rank and need no broadcast
            self._ddp = distributed.wrap_ddp(model, self.device, forward_sync_buffers=not self.sync_bn)
        return self._ddp

    def train_batches(self, stage: str, epoch: int, seed: int) -> DataLoader:
        """This rank's share of one epoch; the shuffle and augmentation seed is drawn from the run's
        random state (the same draw on every rank)."""
        loader = self.train_loader(stage)
        loader.sampler.set_seed(int(torch.randint(0, 2**62, ())))  # type: ignore[union-attr]
        return loader

    def batch_loss(self, net: nn.Module, batch) -> BatchResult:
        """Cross-entropy, and the top-1 hits for the training accuracy."""
        images, labels = batch
        images, labels = self._batch(images), labels.to(self.device, non_blocking=True)
        logits = net(images)
        correct = (logits.detach().argmax(1) == labels).sum()
        return BatchResult(nn.functional.cross_entropy(logits, labels), len(labels), correct, len(labels))

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Top-1 and top-5 accuracy (%) and mean cross-entropy on the test split (under torchrun
        each rank evaluates a disjoint shard and the sums are reduced, so every rank returns the
        same numbers)."""
        model.eval()
        sums = torch.zeros(4, device=self.device, dtype=torch.float64)  # top-1 hits, top-5 hits, loss, images
        for images, labels in itertools.islice(self.test_loader, self.max_batches):
            images, labels = self._batch(images), labels.to(self.device, non_blocking=True)
            logits = model(images)
            sums[2] += nn.functional.cross_entropy(logits, labels, reduction="sum")
            for i, c in enumerate(topk_correct(logits, labels, (1, 5)).values()):
                sums[i] += c
            sums[3] += len(labels)
        top1, top5, loss, count = distributed.all_reduce_sum(sums).tolist()
        count = max(count, 1.0)
        return {"top1": 100.0 * top1 / count, "top5": 100.0 * top5 / count, "loss": loss / count}
