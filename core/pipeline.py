"""The three-stage pipeline every task runs, over a small task interface.

(0) dense model, evaluated; (1) SLR or ADMM training; (2) hard-pruning; (3) masked retraining;
evaluation after each stage. A checkpoint after every epoch lets a stopped run resume to the
same numbers; the results file is written once, atomically, at the end.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np
import torch
from torch import nn

from . import build_pruner
from .distributed import is_main
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .masks import Masks
from .methods import get_method
from .pruner import as_sparsity_config
from .results import atomic_torch_save, build_results, code_version, load_state, read_checkpoint, write_results
from .run_log import RunLogger
from .snapshots import SNAPSHOT_FILE, SNAPSHOT_STAGES, pick_layers, save_snapshots, weight_snapshot
from .stats import compression_stats

__all__ = ["TrainingDiverged", "Task", "history_row", "PruningRecipe", "run_pipeline", "seed_everything", "rng_state", "set_rng_state"]


class Task(Protocol):
    """What a task folder provides to the pipeline."""

    task: str  # e.g. "classification"
    model_name: str
    dataset_name: str
    primary_metric: str  # key of evaluate()'s result that tables report

    def build_model(self) -> nn.Module:
        """The dense model: trained here or loaded from a checkpoint."""

    def build_optimizer(self, model: nn.Module, stage: str) -> tuple[torch.optim.Optimizer, Any]:
        """Optimizer and scheduler (or None) for ``stage`` in {"prune", "retrain"}."""

    def train_one_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, stage: str) -> float:
        """Train one epoch; return the mean training loss (data loss only, no penalty)."""

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Metrics of ``model`` on the evaluation split."""


@dataclass
class PruningRecipe:
    """Method, sparsity and schedule of one run (the paper's defaults)."""

    method: str = "slr"
    sparsity: Any = None  # SparsityConfig, its dict form, or a YAML path
    epochs: int = 40
    retrain_epochs: int = 5
    rho: float = 0.1
    s0: float = 1e-4
    M: float = 200.0
    r: float = 0.1
    update_every: int = 1
    seed: int = 0
    profile: str = "smoke"
    eval_every: int = 1  # evaluate every n-th SLR/ADMM epoch (and the last); retraining: every epoch (Figures 4, 7, 12)
    amplify: bool | None = None  # the authors' gradient amplification (core/authors.py); None: the method's default
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_method(self.method)  # a clear error naming the registered methods
        if self.sparsity is None:
            raise ConfigError("the recipe needs a sparsity config (prune_ratios or target_rate)")
        self.sparsity = as_sparsity_config(self.sparsity)
        if self.epochs < 0 or self.retrain_epochs < 0:
            raise ConfigError("epochs and retrain_epochs must be >= 0")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sparsity"] = self.sparsity.to_dict()
        if data["amplify"] is None:  # the method's default: recorded as before the option existed
            del data["amplify"]
        return data


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _progress(total: int, desc: str, enabled: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc=desc, disable=not (enabled and is_main()), leave=False, dynamic_ncols=True)


def history_row(stage: str, epoch: int, loss: float, metrics: Mapping[str, float] | None, record: Mapping[str, Any] | None) -> dict[str, Any]:
    """One per-epoch row of a results file's ``history``: loss, metrics and the pruner's record."""
    row: dict[str, Any] = {"stage": stage, "epoch": epoch, "loss": loss, "metrics": dict(metrics) if metrics else None}
    if record:
        row.update({k: record[k] for k in ("mixed_loss", "violation", "condition", "alpha", "sparsity") if k in record})
        if "s" in record:
            row["s_mean"] = sum(record["s"].values()) / len(record["s"])
        if "violation_per_layer" in record:
            row["violation_per_layer"] = record["violation_per_layer"]
    return row


def run_pipeline(task: Task, recipe: PruningRecipe, out_dir: str | Path, resume: bool = False, progress: bool = True,
                 stop_after_epochs: int | None = None) -> dict[str, Any] | None:
    """Run all stages of ``recipe`` on ``task`` and write ``out_dir/results.json``.

    With ``resume`` the run continues from ``out_dir/checkpoint.pt``. ``stop_after_epochs``
    ends the process-level run after that many epochs in total (for tests of resumption);
    it then returns ``None`` and leaves only the checkpoint.
    """
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoint.pt"
    code = code_version()  # the code this process runs, not whatever is checked out when it ends
    seed_everything(recipe.seed)
    model = task.build_model()
    seed_everything(recipe.seed)  # the same numbers whether the dense model was trained or loaded
    hyper = {k: getattr(recipe, k) for k in ("rho", "s0", "M", "r", "update_every", "epochs")}
    if recipe.amplify is not None:
        hyper["amplify"] = recipe.amplify
    pruner = build_pruner(recipe.method, model, recipe.sparsity, **hyper)
    optimizer, scheduler = task.build_optimizer(model, "prune")
    pruner.attach(optimizer)
    state: dict[str, Any] = {"stage": "prune", "epoch": 0, "history": [], "metrics": {}, "elapsed": 0.0}
    masks: Masks | None = None

    if resume and ckpt_path.is_file():
        ckpt = read_checkpoint(ckpt_path, "run checkpoint", "delete it and run again without --resume")
        if not isinstance(ckpt, dict) or not {"recipe", "model", "pruner", "optimizer", "state", "rng"} <= set(ckpt):
            raise CheckpointError(f"{ckpt_path} is not a run checkpoint of this project; delete it or use a new --out")
        if ckpt.get("recipe") != recipe.as_dict():
            raise CheckpointError(f"{ckpt_path} was written by a run with another configuration; resume with the same settings or use a new --out")
        fix = "resume with the model settings that wrote it, or delete it and run again without --resume"
        load_state(model, ckpt["model"], ckpt_path, fix)
        pruner.load_state_dict(ckpt["pruner"])
        state = ckpt["state"]
        if state["stage"] == "retrain":
            masks = Masks.from_state_dict(model, ckpt["masks"])
            pruner.detach()
            optimizer, scheduler = task.build_optimizer(model, "retrain")
        load_state(optimizer, ckpt["optimizer"], ckpt_path, fix)
        if scheduler is not None and ckpt.get("scheduler") is not None:
            load_state(scheduler, ckpt["scheduler"], ckpt_path, fix)
        set_rng_state(ckpt["rng"])
    elif resume:
        raise CheckpointError(f"--resume given but {ckpt_path} does not exist; start without --resume")

    logger = RunLogger(out_dir)
    epochs_this_process = 0

    def tick() -> None:
        """Add the time since the last tick to the run's and to the current stage's wall time."""
        nonlocal segment_start
        now = time.time()
        state["elapsed"] += now - segment_start
        stage_times = state.setdefault("stage_elapsed", {})
        stage_times[state["stage"]] = stage_times.get(state["stage"], 0.0) + now - segment_start
        segment_start = now

    def save_checkpoint() -> None:
        tick()
        if not is_main():  # under torchrun rank 0 writes; every rank holds the same state
            return
        atomic_torch_save({
            "recipe": recipe.as_dict(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "pruner": pruner.state_dict(),
            "masks": None if masks is None else masks.state_dict(),
            "state": state,
            "rng": rng_state(),
        }, ckpt_path)

    segment_start = time.time()
    snapshots = state.setdefault("snapshots", {})  # |W| blocks for the heatmap figures
    heatmap_layers = pick_layers(pruner.names)
    if "dense" not in state["metrics"]:
        snapshots["dense"] = weight_snapshot(model, heatmap_layers)
        state["metrics"]["dense"] = task.evaluate(model)

    def train_epoch(stage: str, total: int, epoch: int, optimizer, scheduler) -> float:
        """Train, update the pruner, step the scheduler, evaluate and log one epoch of ``stage``."""
        loss = task.train_one_epoch(model, optimizer, epoch, stage)
        if not math.isfinite(loss):
            resume_hint = f" (after lowering the learning rate, --resume continues from {ckpt_path})" if ckpt_path.is_file() else ""
            raise TrainingDiverged(f"the training loss is {loss} in {stage} epoch {epoch}; lower the learning rate or rho and run again{resume_hint}")
        record = pruner.update(loss) if stage == "prune" else None
        if scheduler is not None:
            scheduler.step()
        last = epoch + 1 == total
        every = recipe.eval_every if stage == "prune" else 1
        metrics = task.evaluate(model) if last or (epoch + 1) % every == 0 else None
        state["history"].append(history_row(stage, epoch, loss, metrics, record))
        state["epoch"] = epoch + 1
        logger.log(state["history"], len(state["history"]))
        return loss

    def run_epochs(stage: str, total: int) -> bool:
        """Train ``stage`` up to ``total`` epochs; False when stopped early for a test."""
        nonlocal epochs_this_process
        bar = _progress(total, f"{recipe.method} {stage}", progress)
        if bar is not None:
            bar.update(state["epoch"])
        while state["epoch"] < total:
            loss = train_epoch(stage, total, state["epoch"], optimizer, scheduler)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
            save_checkpoint()
            epochs_this_process += 1
            if stop_after_epochs is not None and epochs_this_process >= stop_after_epochs:
                return False
        if bar is not None:
            bar.close()
        return True

    if state["stage"] == "prune":
        if getattr(pruner, "owns_loop", False):  # a peer that runs its own loop (NNI); no checkpoints inside it
            if scheduler is not None:
                raise ConfigError(f"method '{recipe.method}' runs its own pruning loop and cannot step the task's scheduler; use a constant learning rate")
            pruner.run_prune_stage(lambda opt, epoch: train_epoch("prune", recipe.epochs, epoch, opt, None), recipe.epochs)
        elif not run_epochs("prune", recipe.epochs):
            return None
        state["metrics"]["after_training"] = _last_metrics(state, "prune") or task.evaluate(model)
        snapshots["after_training"] = weight_snapshot(model, heatmap_layers)
        masks = pruner.hard_prune()
        snapshots["after_hard_pruning"] = weight_snapshot(model, heatmap_layers)
        state["metrics"]["after_hard_pruning"] = task.evaluate(model)
        tick()  # hard-pruning and its evaluation count to the pruning stage
        state.update(stage="retrain", epoch=0)
        optimizer, scheduler = task.build_optimizer(model, "retrain")
        masks.attach(optimizer)
        save_checkpoint()
    else:
        masks.attach(optimizer)
    if not run_epochs("retrain", recipe.retrain_epochs):
        return None
    state["metrics"]["after_retraining"] = _last_metrics(state, "retrain") or dict(state["metrics"]["after_hard_pruning"])
    logger.close()

    stats = compression_stats(model, pruner.names)
    extra: dict[str, Any] = {}
    if all(stage in snapshots for stage in SNAPSHOT_STAGES):  # a checkpoint of an older version may lack them
        if is_main():
            save_snapshots(out_dir / SNAPSHOT_FILE, snapshots)
        extra["heatmaps"] = SNAPSHOT_FILE  # relative to the results file
    tick()
    results = build_results(
        task=task.task, model=task.model_name, dataset=task.dataset_name, method=recipe.method, profile=recipe.profile,
        seed=recipe.seed, target_compression=recipe.sparsity.target_rate, stats=stats, primary_metric=task.primary_metric,
        metrics=state["metrics"], history=state["history"], pruner_history=pruner.history,
        config={"recipe": recipe.as_dict(), "task": getattr(task, "config", lambda: {})()}, wall_time_s=state["elapsed"],
        code=code, stage_wall_time_s=dict(state.get("stage_elapsed", {})), **extra,
    )
    if is_main():
        write_results(out_dir / "results.json", results)
    return results


def _last_metrics(state: Mapping[str, Any], stage: str) -> dict[str, float] | None:
    """Metrics of the stage's last epoch (always evaluated), or None when the stage had no epoch."""
    rows = [r for r in state["history"] if r["stage"] == stage]
    return dict(rows[-1]["metrics"]) if rows else None
