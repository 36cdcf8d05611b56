"""What a task folder gives the pipeline: a :class:`PipelineTask` subclass.

A task holds what is specific to one upstream code base: its model, its batches and loss, its
optimizer and schedule, its metric. Everything else (the dense-model step, the batch loop, the
stages, checkpoints, results) is core's, the same for every task. A subclass sets the four names
and implements five methods (the others have defaults)::

    class DigitsTask(PipelineTask):
        task, model_name, dataset_name, primary_metric = "core_demo", "mlp", "sklearn-digits", "top1"
        def new_model(self): ...                          # the architecture, fresh weights
        def build_optimizer(self, model, stage): ...      # (optimizer, scheduler or PerIteration(...) or None)
        def train_batches(self, stage, epoch, seed): ...  # one epoch's batches
        def batch_loss(self, net, batch): ...             # BatchResult(mean loss, samples, correct, counted)
        def evaluate(self, model): ...                    # {metric: value}
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

import torch
from torch import nn

from ..errors import CheckpointError
from .results import load_state, read_checkpoint

__all__ = ["PipelineTask", "BatchResult", "PerIteration", "load_weights"]


class BatchResult(NamedTuple):
    """What a task's :meth:`PipelineTask.batch_loss` returns for one training batch."""

    loss: torch.Tensor  # the mean data loss of the batch (no penalty)
    samples: int  # the number of samples it averages over
    correct: torch.Tensor | int | None = None  # training accuracy: predictions right ...
    counted: torch.Tensor | int | None = None  # ... out of this many (None: the task has no training accuracy)


class PerIteration:
    """A learning-rate scheduler stepped after every optimizer step (OneCycle, warm-up + cosine),
    not once per epoch; it stops at ``total_steps`` so that a schedule sized for a stage never
    steps past its end."""

    def __init__(self, scheduler: Any, total_steps: int) -> None:
        self.scheduler, self.total_steps = scheduler, max(1, int(total_steps))

    def step(self) -> None:
        if self.scheduler.last_epoch + 1 < self.total_steps:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


def load_weights(model: nn.Module, path: str | Path, fix: str = "pass a PyTorch state-dict file of this model") -> None:
    """Load a checkpoint into ``model``: a state dict, or a dict holding one under ``model`` or
    ``state_dict``; DataParallel's ``module.`` prefixes are removed."""
    path = Path(path)
    state = read_checkpoint(path, "dense checkpoint", fix, weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(f"dense checkpoint {path} holds no state dict; {fix}")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    load_state(model, state, f"dense checkpoint {path}", fix)


class PipelineTask:
    """Base class of the tasks: the hooks the pipeline calls, with the defaults most tasks keep."""

    task: str  # the task folder, e.g. "classification"
    model_name: str
    dataset_name: str
    primary_metric: str  # key of evaluate()'s result that tables report
    settings: dict[str, Any]  # the experiment's settings (one config schema)
    device: torch.device = torch.device("cpu")
    progress: bool = True
    grad_clip: float | None = None  # clip the gradient norm of every step to this (None: no clipping)
    max_batches: int | None = None  # end every training epoch and evaluation after this many batches (a check, not a measurement)
    amp: bool = False  # mixed-precision forward on a GPU (core.harness.loop)
    # the settings a dense model trained here depends on: its cache file is named by their digest
    dense_keys: tuple[str, ...] = ("model", "data", "dense", "batch_size")

    def config(self) -> dict[str, Any]:
        """The task settings stored in each results file."""
        return self.settings

    def new_model(self) -> nn.Module:
        """The architecture with fresh weights, on :attr:`device`."""
        raise NotImplementedError

    def has_trained_weights(self) -> bool:
        """Whether :meth:`new_model` already holds trained weights (e.g. torchvision's ImageNet
        weights), which then are the dense model when no checkpoint is given and no epochs are asked for."""
        return False

    def load_dense(self, model: nn.Module, path: Path) -> None:
        """Load a user's dense checkpoint (``dense.checkpoint``) into ``model``."""
        load_weights(model, path, "pass a PyTorch state-dict file of this model as dense.checkpoint (or --dense-checkpoint)")

    def build_optimizer(self, model: nn.Module, stage: str) -> tuple[torch.optim.Optimizer, Any]:
        """Optimizer and scheduler for ``stage`` ("dense", "prune", "retrain"); the scheduler is
        None, a per-epoch scheduler, or a :class:`PerIteration`."""
        raise NotImplementedError

    def train_batches(self, stage: str, epoch: int, seed: int) -> Iterable[Any]:
        """The batches of one training epoch (``seed``: the run's seed, or the dense seed)."""
        raise NotImplementedError

    def batch_loss(self, net: nn.Module, batch: Any) -> BatchResult:
        """The training loss of ``batch`` (data loss only, no penalty), its number of samples and,
        for the training accuracy, the predictions right out of those counted."""
        raise NotImplementedError

    def training_module(self, model: nn.Module) -> nn.Module:
        """The module the batches go through: ``model``, or a DistributedDataParallel wrapper of it."""
        return model

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Metrics of ``model`` on the evaluation split (its first :attr:`max_batches` batches when that is set)."""
        raise NotImplementedError
