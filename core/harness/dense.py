"""The dense-model step of every task: load it, read it from the cache, or train it here.

The same rules for every task, in this order:

1. ``dense.checkpoint`` (``--dense-checkpoint``) names a file: the task loads it (its own format).
2. The cache folder holds ``<model>_<dataset>_<digest>.pt``, where the digest covers every setting
   the dense model depends on (:attr:`PipelineTask.dense_keys`): it is loaded.
3. ``dense.epochs > 0``: the model is trained here from the fixed seed ``dense.seed`` (default 0),
   whatever the run's seed, so every run of a grid starts from the same dense model; the caller's
   random state is left as it was. Each epoch's state goes to ``<cache>.partial.pt``, so a stopped
   dense training continues where it stopped, to the same weights; then the cache file is written.
4. ``dense.epochs`` is 0 and the architecture comes with trained weights (torchvision's
   ImageNet models): those are the dense model.
5. Otherwise: a clear error naming both ways to get a dense model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import CheckpointError, ConfigError
from ..pruning.ranks import is_main
from . import distributed
from .config import settings_digest
from .loop import progress_bar, train_one_epoch
from .results import atomic_torch_save, load_state, read_checkpoint
from .seeding import rng_state, seed_everything, set_rng_state
from .task import PerIteration, PipelineTask

__all__ = ["DenseModel", "dense_cache_path", "build_dense_model"]


@dataclass
class DenseModel:
    """Where a task's dense model came from, and its training losses when it was trained here."""

    source: str = ""
    losses: list[float] = field(default_factory=list)


def dense_cache_path(task: PipelineTask, cache_dir: str | Path) -> Path:
    """The cache file of ``task``'s dense model: named by the digest of its dense settings."""
    settings = {k: task.settings.get(k) for k in task.dense_keys}
    if task.max_batches is not None:  # a shortened check never stands in for a real dense model
        settings["max_batches"] = task.max_batches
    digest = settings_digest(settings)
    return Path(cache_dir) / f"{task.model_name}_{task.dataset_name}_{digest}.pt"


def build_dense_model(task: PipelineTask, cache_dir: str | Path | None, info: DenseModel | None = None) -> nn.Module:
    """``task``'s dense model by the rules of this module; ``info`` (when given) records its source."""
    info = info if info is not None else DenseModel()
    dense = dict(task.settings.get("dense") or {})
    seed = int(dense.get("seed", 0))
    if dense.get("checkpoint"):
        model = task.new_model()
        task.load_dense(model, Path(dense["checkpoint"]))
        info.source = str(dense["checkpoint"])
        return model
    cache = None if cache_dir is None else dense_cache_path(task, cache_dir)
    if cache is not None and distributed.broadcast_object(cache.is_file()):  # rank 0 decides: all ranks train or none
        model = task.new_model()
        fix = f"delete the stale cache file {cache}"
        state = read_checkpoint(cache, "cached dense model", fix, weights_only=True)
        load_state(model, state["model"] if isinstance(state, dict) and "model" in state else state, cache, fix)
        info.source = f"{cache} (cached)"
        return model
    epochs = int(dense.get("epochs") or 0)
    if epochs <= 0 and task.has_trained_weights():
        info.source = "the architecture's own trained weights"
        return task.new_model()
    if epochs <= 0:
        raise ConfigError("no dense model: set dense.checkpoint (or --dense-checkpoint) to a trained model, or dense.epochs > 0 to train one here")
    saved = rng_state()
    seed_everything(seed)
    model = task.new_model()
    seed_everything(seed)  # the same training whatever the architecture's initialisation drew
    info.losses = _train(task, model, epochs, seed, cache)
    metrics = task.evaluate(model)  # on every rank: the sums are reduced over them
    info.source = "trained here" + (f", cached in {cache}" if cache is not None else "")
    if cache is not None and is_main():
        atomic_torch_save({"model": model.state_dict(), "metrics": metrics, "losses": info.losses, "settings": task.settings}, cache)
        cache.with_suffix(".partial.pt").unlink(missing_ok=True)
    distributed.barrier()  # the cache exists before any rank goes on
    set_rng_state(saved)
    return model


def _train(task: PipelineTask, model: nn.Module, epochs: int, seed: int, cache: Path | None) -> list[float]:
    """Train ``epochs`` epochs of the "dense" stage, resuming from ``<cache>.partial.pt``."""
    optimizer, scheduler = task.build_optimizer(model, "dense")
    partial = None if cache is None else cache.with_suffix(".partial.pt")
    losses: list[float] = []
    start = 0
    if partial is not None and distributed.broadcast_object(partial.is_file()):
        fix = "delete it to train the dense model from the start"
        state = read_checkpoint(partial, "partial dense training", fix)
        if not isinstance(state, dict) or "epoch" not in state:
            raise CheckpointError(f"{partial} is not a partial dense training of this project; {fix}")
        load_state(model, state["model"], partial, fix)
        load_state(optimizer, state["optimizer"], partial, fix)
        if scheduler is not None:
            load_state(scheduler, state["scheduler"], partial, fix)
        set_rng_state(state["rng"])
        start, losses = int(state["epoch"]), list(state.get("losses") or [])
    bar = progress_bar(epochs, f"dense {task.model_name}", task.progress)
    if bar is not None:
        bar.update(start)
    for epoch in range(start, epochs):
        losses.append(train_one_epoch(task, model, optimizer, scheduler, epoch, "dense", seed).loss)
        if scheduler is not None and not isinstance(scheduler, PerIteration):
            scheduler.step()
        if partial is not None and is_main():
            atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1, "losses": losses,
                               "scheduler": None if scheduler is None else scheduler.state_dict(), "rng": rng_state()}, partial)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    if bar is not None:
        bar.close()
    return losses
