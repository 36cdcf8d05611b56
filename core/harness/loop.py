"""The one batch loop of every task and stage: the task gives the batches and the loss."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..pruning.ranks import all_reduce_sum, is_main
from .task import PerIteration, PipelineTask

__all__ = ["train_one_epoch", "progress_bar"]

_EPOCH_BAR_MIN_BATCHES = 50  # shorter epochs show only the stage's bar


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on rank 0 (``None`` when disabled)."""
    if not (enabled and is_main()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def train_one_epoch(task: PipelineTask, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    epoch: int, stage: str, seed: int) -> float:
    """Train ``model`` on one epoch of ``task``'s batches; return the mean loss per sample over
    every rank. A :class:`PerIteration` scheduler steps after each optimizer step; a per-epoch
    one is the caller's to step."""
    net = task.training_module(model)
    net.train()
    batches = task.train_batches(stage, epoch, seed)
    count = len(batches) if hasattr(batches, "__len__") else 0
    bar = progress_bar(count, f"{stage} epoch {epoch + 1}", task.progress and count >= _EPOCH_BAR_MIN_BATCHES)
    sums = torch.zeros(2, device=task.device, dtype=torch.float64)  # loss * samples, samples
    for batch in batches:
        loss, samples = task.batch_loss(net, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if task.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), task.grad_clip)
        optimizer.step()
        if isinstance(scheduler, PerIteration):
            scheduler.step()
        sums[0] += loss.detach() * samples
        sums[1] += samples
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    total, samples = all_reduce_sum(sums).tolist()
    return total / max(samples, 1.0)
