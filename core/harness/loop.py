"""The one batch loop of every task and stage: the task gives the batches and the loss."""
from __future__ import annotations

import contextlib
import itertools
import weakref
from typing import Any, NamedTuple

import torch
from torch import nn

from ..pruning.ranks import all_reduce_sum, is_main
from .task import BatchResult, PerIteration, PipelineTask

__all__ = ["EpochStats", "train_one_epoch", "progress_bar"]


class EpochStats(NamedTuple):
    """One training epoch over every rank: the mean loss per sample and the training accuracy (%,
    None for a task without one)."""

    loss: float
    accuracy: float | None

_EPOCH_BAR_MIN_BATCHES = 50  # shorter epochs show only the stage's bar
_SCALERS: "weakref.WeakKeyDictionary[torch.optim.Optimizer, Any]" = weakref.WeakKeyDictionary()  # one per optimizer, kept across epochs


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on rank 0 (``None`` when disabled)."""
    if not (enabled and is_main()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def train_one_epoch(task: PipelineTask, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    epoch: int, stage: str, seed: int) -> EpochStats:
    """Train ``model`` on one epoch of ``task``'s batches; return the mean loss per sample and the
    training accuracy over every rank. A :class:`PerIteration` scheduler steps after each optimizer step; a per-epoch
    one is the caller's to step.

    ``task.max_batches`` ends the epoch after that many batches (a check of every stage, not a
    measurement); ``task.amp`` runs the forward in mixed precision on a GPU, with a gradient
    scaler that unscales the gradients before the optimizer step, where a pruner's hook adds its
    penalty to them."""
    net = task.training_module(model)
    net.train()
    batches = task.train_batches(stage, epoch, seed)
    count = len(batches) if hasattr(batches, "__len__") else 0
    if task.max_batches is not None:
        batches, count = itertools.islice(batches, task.max_batches), min(count, task.max_batches)
    bar = progress_bar(count, f"{stage} epoch {epoch + 1}", task.progress and count >= _EPOCH_BAR_MIN_BATCHES)
    amp = task.amp and task.device.type == "cuda"
    scaler = _SCALERS.setdefault(optimizer, torch.amp.GradScaler("cuda")) if amp else None
    sums = torch.zeros(4, device=task.device, dtype=torch.float64)  # loss * samples, samples, correct, counted
    for batch in batches:
        with torch.autocast("cuda") if amp else contextlib.nullcontext():
            result = BatchResult(*task.batch_loss(net, batch))
        loss, samples = result.loss, result.samples
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            _clip(task, model)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            _clip(task, model)
            scaler.step(optimizer)
            scaler.update()
        if isinstance(scheduler, PerIteration):
            scheduler.step()
        sums[0] += loss.detach() * samples
        sums[1] += samples
        if result.counted is not None:
            sums[2] += result.correct
            sums[3] += result.counted
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    total, samples, correct, counted = all_reduce_sum(sums).tolist()
    return EpochStats(total / max(samples, 1.0), 100.0 * correct / counted if counted else None)


def _clip(task: PipelineTask, model: nn.Module) -> None:
    if task.grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), task.grad_clip)
