"""The staged pipeline every task runs: dense, prune, hard-prune, retrain, finish.

(0) the dense model (core.harness.dense), evaluated; (1) SLR, ADMM or a peer trains the model
with its penalty; (2) hard-pruning fixes the masks; (3) masked retraining; evaluation after each
stage. A checkpoint after every epoch lets a stopped run resume to the same numbers; the results
file is written once, atomically, at the end.

    Pipeline(task, recipe, out_dir, dense_dir=...).run()   # or run_pipeline(...)
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Mapping

from ..errors import CheckpointError, ConfigError, TrainingDiverged
from ..pruning.masks import Masks
from ..pruning.methods import build_pruner, get_method
from ..pruning.ranks import is_main
from ..pruning.stats import compression_stats
from .dense import DenseModel, build_dense_model
from .loop import progress_bar, train_one_epoch
from .recipe import PruningRecipe, same_recipe
from .results import atomic_torch_save, build_results, code_version, load_state, read_checkpoint, write_results
from .run_log import RunLogger
from .seeding import rng_state, seed_everything, set_rng_state
from .snapshots import SNAPSHOT_FILE, SNAPSHOT_STAGES, pick_layers, save_snapshots, weight_snapshot
from .task import PerIteration, PipelineTask

__all__ = ["TrainingDiverged", "Pipeline", "run_pipeline", "history_row"]

_CHECKPOINT_KEYS = {"recipe", "model", "pruner", "optimizer", "state", "rng"}


def history_row(stage: str, epoch: int, loss: float, metrics: Mapping[str, float] | None, record: Mapping[str, Any] | None,
                train_accuracy: float | None = None) -> dict[str, Any]:
    """One per-epoch row of a results file's ``history``: training loss and accuracy, evaluation
    metrics and the pruner's record."""
    row: dict[str, Any] = {"stage": stage, "epoch": epoch, "loss": loss, "train_accuracy": train_accuracy,
                           "metrics": dict(metrics) if metrics else None}
    if record:
        row.update({k: record[k] for k in ("mixed_loss", "violation", "condition", "alpha", "sparsity") if k in record})
        if "s" in record:
            row["s_mean"] = sum(record["s"].values()) / len(record["s"])
        if "violation_per_layer" in record:
            row["violation_per_layer"] = record["violation_per_layer"]
    return row


class Pipeline:
    """One run of ``recipe`` on ``task``, written to ``out_dir`` (``results.json``, checkpoint, logs).

    ``dense_dir`` caches the dense model (None: trained for this run alone). With ``resume`` the
    run continues from ``out_dir/checkpoint.pt``. ``stop_after_epochs`` ends this process's part
    of the run after that many epochs (for tests of resumption): :meth:`run` then returns None.
    """

    def __init__(self, task: PipelineTask, recipe: PruningRecipe, out_dir: str | Path, dense_dir: str | Path | None = None,
                 resume: bool = False, progress: bool = True, stop_after_epochs: int | None = None) -> None:
        self.task, self.recipe, self.out_dir = task, recipe, Path(out_dir)
        self.dense_dir, self.resume, self.progress, self.stop_after_epochs = dense_dir, resume, progress, stop_after_epochs
        self.ckpt_path = self.out_dir / "checkpoint.pt"
        self.spec = get_method(recipe.method)
        self.dense_info = DenseModel()
        self.state: dict[str, Any] = {"stage": "prune", "epoch": 0, "history": [], "metrics": {}, "elapsed": 0.0}
        self.masks: Masks | None = None
        self.epochs_this_process = 0

    # stages -----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any] | None:
        """Every stage not done yet; the results (also in ``out_dir/results.json``), or None when stopped early."""
        self.code = code_version()  # the code this process runs, not whatever is checked out when it ends
        self.dense()
        self.logger = RunLogger(self.out_dir)
        self.segment_start = time.time()
        self.evaluate_dense()
        if self.state["stage"] == "prune":
            if not self.prune():
                return None
            self.hard_prune()
        else:
            self.masks.attach(self.optimizer)
        if not self.retrain():
            return None
        return self.finish()

    def dense(self) -> None:
        """Build the dense model, the pruner and the pruning optimizer; restore a checkpoint when resuming."""
        recipe, task = self.recipe, self.task
        seed_everything(recipe.seed)
        self.model = build_dense_model(task, self.dense_dir, self.dense_info)
        if is_main():
            print(f"dense model: {self.dense_info.source}")  # loaded, cached or trained here: the user sees which
        seed_everything(recipe.seed)  # the same numbers whether the dense model was trained or loaded
        self.pruner = build_pruner(recipe.method, self.model, recipe.sparsity, **recipe.pruner_settings())
        self.optimizer, self.scheduler = task.build_optimizer(self.model, "prune")
        self.pruner.attach(self.optimizer)
        if self.resume:
            self._restore()

    def evaluate_dense(self) -> None:
        self.snapshots = self.state.setdefault("snapshots", {})  # |W| blocks for the heatmap figures
        self.heatmap_layers = pick_layers(self.pruner.names)
        if "dense" not in self.state["metrics"]:
            self.snapshots["dense"] = weight_snapshot(self.model, self.heatmap_layers)
            self.state["metrics"]["dense"] = self.task.evaluate(self.model)

    def prune(self) -> bool:
        """The SLR / ADMM (or peer) training epochs; False when stopped early for a test."""
        if self.spec.owns_loop:  # a peer that runs its own loop (NNI); no checkpoints inside it
            if self.scheduler is not None:
                raise ConfigError(f"method '{self.recipe.method}' runs its own pruning loop and cannot step the task's scheduler; use a constant learning rate")
            self.pruner.run_prune_stage(lambda opt, epoch: self.train_epoch("prune", self.recipe.epochs, epoch, opt, None), self.recipe.epochs)
            return True
        return self.run_epochs("prune", self.recipe.epochs)

    def hard_prune(self) -> None:
        """Fix the masks (W <- Proj_S(W)), evaluate, and set up masked retraining."""
        state, model = self.state, self.model
        state["metrics"]["after_training"] = self._last_metrics("prune") or self.task.evaluate(model)
        self.snapshots["after_training"] = weight_snapshot(model, self.heatmap_layers)
        self.masks = self.pruner.hard_prune()
        self.snapshots["after_hard_pruning"] = weight_snapshot(model, self.heatmap_layers)
        state["metrics"]["after_hard_pruning"] = self.task.evaluate(model)
        self.tick()  # hard-pruning and its evaluation count to the pruning stage
        state.update(stage="retrain", epoch=0)
        self.optimizer, self.scheduler = self.task.build_optimizer(model, "retrain")
        self.masks.attach(self.optimizer)
        self.save_checkpoint()

    def retrain(self) -> bool:
        """Masked retraining; False when stopped early for a test."""
        if not self.run_epochs("retrain", self.recipe.retrain_epochs):
            return False
        metrics = self.state["metrics"]
        metrics["after_retraining"] = self._last_metrics("retrain") or dict(metrics["after_hard_pruning"])
        return True

    def finish(self) -> dict[str, Any]:
        """Compression statistics, heatmap snapshots and the results file."""
        self.logger.close()
        task, recipe, state = self.task, self.recipe, self.state
        stats = compression_stats(self.model, self.pruner.names)
        extra: dict[str, Any] = {}
        if all(stage in self.snapshots for stage in SNAPSHOT_STAGES):  # a checkpoint of an older version may lack them
            if is_main():
                save_snapshots(self.out_dir / SNAPSHOT_FILE, self.snapshots)
            extra["heatmaps"] = SNAPSHOT_FILE  # relative to the results file
        self.tick()
        results = build_results(
            task=task.task, model=task.model_name, dataset=task.dataset_name, method=recipe.method, profile=recipe.profile,
            seed=recipe.seed, target_compression=recipe.sparsity.target_rate, stats=stats, primary_metric=task.primary_metric,
            metrics=state["metrics"], history=state["history"], pruner_history=self.pruner.history,
            config={"recipe": recipe.as_dict(), "task": task.config()}, wall_time_s=state["elapsed"],
            code=self.code, stage_wall_time_s=dict(state.get("stage_elapsed", {})), **extra,
        )
        if is_main():
            write_results(self.out_dir / "results.json", results)
        return results

    # epochs -----------------------------------------------------------------------------------
    def train_epoch(self, stage: str, total: int, epoch: int, optimizer, scheduler) -> float:
        """Train, update the pruner, step the scheduler, evaluate and log one epoch of ``stage``."""
        loss, accuracy = train_one_epoch(self.task, self.model, optimizer, scheduler, epoch, stage, self.recipe.seed)
        if not math.isfinite(loss):
            resume_hint = f" (after lowering the learning rate, --resume continues from {self.ckpt_path})" if self.ckpt_path.is_file() else ""
            raise TrainingDiverged(f"the training loss is {loss} in {stage} epoch {epoch}; lower the learning rate or rho and run again{resume_hint}")
        record = self.pruner.update(loss) if stage == "prune" else None
        if scheduler is not None and not isinstance(scheduler, PerIteration):
            scheduler.step()
        every = self.recipe.eval_every if stage == "prune" else 1
        metrics = self.task.evaluate(self.model) if epoch + 1 == total or (epoch + 1) % every == 0 else None
        self.state["history"].append(history_row(stage, epoch, loss, metrics, record, accuracy))
        self.state["epoch"] = epoch + 1
        self.logger.log(self.state["history"], len(self.state["history"]))
        return loss

    def run_epochs(self, stage: str, total: int) -> bool:
        """Train ``stage`` up to ``total`` epochs, checkpointing each; False when stopped early for a test."""
        bar = progress_bar(total, f"{self.recipe.method} {stage}", self.progress)
        if bar is not None:
            bar.update(self.state["epoch"])
        while self.state["epoch"] < total:
            loss = self.train_epoch(stage, total, self.state["epoch"], self.optimizer, self.scheduler)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
            self.save_checkpoint()
            self.epochs_this_process += 1
            if self.stop_after_epochs is not None and self.epochs_this_process >= self.stop_after_epochs:
                return False
        if bar is not None:
            bar.close()
        return True

    # bookkeeping ------------------------------------------------------------------------------
    def tick(self) -> None:
        """Add the time since the last tick to the run's and to the current stage's wall time."""
        now = time.time()
        self.state["elapsed"] += now - self.segment_start
        stage_times = self.state.setdefault("stage_elapsed", {})
        stage_times[self.state["stage"]] = stage_times.get(self.state["stage"], 0.0) + now - self.segment_start
        self.segment_start = now

    def save_checkpoint(self) -> None:
        self.tick()
        if not is_main():  # under torchrun rank 0 writes; every rank holds the same state
            return
        atomic_torch_save({
            "recipe": self.recipe.as_dict(), "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(), "pruner": self.pruner.state_dict(),
            "masks": None if self.masks is None else self.masks.state_dict(), "state": self.state, "rng": rng_state(),
        }, self.ckpt_path)

    def _restore(self) -> None:
        """Continue from ``checkpoint.pt``: model, pruner, stage, optimizer, scheduler, random state."""
        path = self.ckpt_path
        if not path.is_file():
            raise CheckpointError(f"--resume given but {path} does not exist; start without --resume")
        ckpt = read_checkpoint(path, "run checkpoint", "delete it and run again without --resume")
        if not isinstance(ckpt, dict) or not _CHECKPOINT_KEYS <= set(ckpt):
            raise CheckpointError(f"{path} is not a run checkpoint of this project; delete it or use a new --out")
        if not same_recipe(ckpt.get("recipe"), self.recipe):
            raise CheckpointError(f"{path} was written by a run with another configuration; resume with the same settings or use a new --out")
        fix = "resume with the model settings that wrote it, or delete it and run again without --resume"
        load_state(self.model, ckpt["model"], path, fix)
        self.pruner.load_state_dict(ckpt["pruner"])
        self.state = ckpt["state"]
        if self.state["stage"] == "retrain":
            self.masks = Masks.from_state_dict(self.model, ckpt["masks"])
            self.pruner.detach()
            self.optimizer, self.scheduler = self.task.build_optimizer(self.model, "retrain")
        load_state(self.optimizer, ckpt["optimizer"], path, fix)
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            load_state(self.scheduler, ckpt["scheduler"], path, fix)
        set_rng_state(ckpt["rng"])

    def _last_metrics(self, stage: str) -> dict[str, float] | None:
        """Metrics of the stage's last epoch (always evaluated), or None when the stage had no epoch."""
        rows = [r for r in self.state["history"] if r["stage"] == stage]
        return dict(rows[-1]["metrics"]) if rows else None


def run_pipeline(task: PipelineTask, recipe: PruningRecipe, out_dir: str | Path, resume: bool = False, progress: bool = True,
                 stop_after_epochs: int | None = None, dense_dir: str | Path | None = None) -> dict[str, Any] | None:
    """:class:`Pipeline` ``(...).run()``: all stages of ``recipe`` on ``task`` into ``out_dir/results.json``."""
    return Pipeline(task, recipe, out_dir, dense_dir=dense_dir, resume=resume, progress=progress,
                    stop_after_epochs=stop_after_epochs).run()
