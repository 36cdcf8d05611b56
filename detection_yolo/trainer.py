"""SLR and ADMM inside Ultralytics' own detection trainer.

Ultralytics' ``optimizer_step`` unscales, clips and steps in one method and no callback sees
the gradients, so the trainers here override it: the relaxation gradient (SLR or ADMM) is added
to the unscaled gradients before clipping. Everything else is Ultralytics' loop, with its
callbacks used for the per-epoch Z / multiplier update and for recording metrics.

Three stages, one trainer class each. Ultralytics builds them as it builds its own
(``trainer(overrides=..., _callbacks=...)``), so a user passes them to ``YOLO(...).train(trainer=...)``;
the stage's :class:`~detection_yolo.spec.StageSpec` comes from the ``prune=`` training option,
from :meth:`_StageTrainer.configured`, or from the pipeline, and travels in the trainer's
callbacks, which Ultralytics pickles for its DDP workers:

* :class:`DenseTrainer`: plain training, metrics recorded per epoch;
* :class:`PruneTrainer`: SLR or ADMM training, then hard-pruning of the model and of the EMA copy
  that Ultralytics validates and saves (``weights/pruned.pt``, ``weights/masks.pt``);
* :class:`MaskedRetrainTrainer`: masked retraining from ``pruned.pt``; pruned weights stay
  exactly zero in the model, the optimizer state and the EMA copy.

Each stage writes ``stage.json`` (per-epoch rows, pruner history, metrics) in its save folder.

Resuming in the middle of a stage goes through Ultralytics' own ``resume=weights/last.pt``
(arguments, start epoch, best fitness, early stopping, results.csv). Its ``last.pt`` holds the
EMA weights and the optimizer state in float16 and no training weights, so beside it every epoch
writes ``weights/resume_e<epoch>.pt`` with what continues the stage exactly: the float32 model,
EMA and optimizer state, the pruner state (Z, duals, stepsizes, history), the per-epoch rows and
every rank's random state (Python, NumPy, torch, the train loader's generator, the mosaic buffer).
Both files are written atomically, the state first, so a process killed at any moment (SIGKILL
included) leaves a ``last.pt`` whose epoch has its state. The train loader starts a fresh
iterator every epoch, so the order of each epoch's images depends only on that state. A stage
resumed this way ends with the numbers of an uninterrupted one, bit for bit on the CPU
(``workers=0``, as this package always sets).
"""
from __future__ import annotations

import itertools
import json
import os
from copy import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK, callbacks
from ultralytics.utils.torch_utils import strip_optimizer, unwrap_model

from core import Masks, build_pruner, compression_stats
from core.harness import distributed
from core.errors import ConfigError
from core.harness.pipeline import history_row, rng_state, set_rng_state
from core.harness.results import atomic_torch_save, atomic_write

from .data_errors import data_error
from .layers import expand_patterns
from .spec import SPARSITY_OPTIONS, SCHEDULE_OPTIONS, StageSpec, prune_spec, retrain_spec
from .ultralytics_env import restore_threads

__all__ = ["StageSpec", "DenseTrainer", "PruneTrainer", "MaskedRetrainTrainer", "detection_metrics", "resume_overrides",
           "restart_reason", "FirstBatches", "first_batches_validator", "SPEC_KEY", "PRUNE_KEY", "MAX_GRAD_NORM"]

SPEC_KEY = "slr_stage_spec"  # callbacks entry that carries the spec (never run as an event)
PRUNE_KEY = "prune"  # the train() keyword that configures PruneTrainer: prune={"method": "slr", "rate": 2.0}
MAX_GRAD_NORM = 10.0  # Ultralytics' gradient clipping norm
RESUME_STATE = "resume_e{epoch}.pt"  # in weights/, beside last.pt of the same epoch


def _checkpoint_epoch(path: Path) -> int | None:
    """The epoch an Ultralytics checkpoint was saved after (-1 once stripped), or None when unreadable."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        return int(ckpt.get("epoch", -1))
    except Exception:  # a missing or damaged file: the stage starts over
        return None


def restart_reason(save_dir: str | Path) -> str | None:
    """Why the stage in ``save_dir`` cannot continue where it stopped (so ``--resume`` restarts
    it), or None when it can, or when the folder holds no trace of an earlier run."""
    save_dir = Path(save_dir)
    last = save_dir / "weights" / "last.pt"
    if not last.is_file():
        started = save_dir.is_dir() and any(save_dir.iterdir())
        return "it stopped before its first epoch ended (no weights/last.pt)" if started else None
    epoch = _checkpoint_epoch(last)
    if epoch is None:
        return "weights/last.pt cannot be read"
    if epoch < 0:
        return "weights/last.pt is a finished, stripped checkpoint but the stage's results are missing"
    if not (last.parent / RESUME_STATE.format(epoch=epoch)).is_file():
        return (f"weights/last.pt (epoch {epoch + 1}) has no {RESUME_STATE.format(epoch=epoch)} beside it "
                "(stopped between the two writes)")
    return None


def resume_overrides(save_dir: str | Path, resume: bool = True, log=print) -> dict[str, str]:
    """``{"resume": ".../weights/last.pt"}`` when the stage in ``save_dir`` stopped after an epoch
    whose exact state is saved beside ``last.pt``; otherwise ``{}`` and the stage starts over, with
    one line through ``log`` saying why when ``resume`` was asked for and the folder holds an earlier run."""
    if not resume:
        return {}
    reason = restart_reason(save_dir)
    last = Path(save_dir) / "weights" / "last.pt"
    if reason is None and last.is_file():
        return {"resume": str(last)}
    if reason is not None and log is not None:
        log(f"resume: {save_dir} restarts from its first epoch: {reason}")
    return {}


def detection_metrics(metrics: dict[str, Any] | None) -> dict[str, float] | None:
    """Ultralytics' validation metrics as percentages: ``mAP50``, ``mAP50-95``, ``precision``, ``recall``."""
    if not metrics or "metrics/mAP50(B)" not in metrics:
        return None
    keys = {"mAP50": "metrics/mAP50(B)", "mAP50-95": "metrics/mAP50-95(B)", "precision": "metrics/precision(B)", "recall": "metrics/recall(B)"}
    return {name: float(metrics[key]) * 100 for name, key in keys.items() if key in metrics}


class FirstBatches:
    """An Ultralytics data loader cut to its first ``n`` batches per pass (``--max-batches``: a check
    that every stage runs, not a measurement); every other attribute is the loader's own.
    ``restart`` begins each pass at the first batch (validation: the same batches every time);
    Ultralytics' loaders otherwise go on where the last pass stopped."""

    def __init__(self, loader, n: int, restart: bool = False) -> None:
        self.loader, self.n, self.restart = loader, int(n), restart

    def __len__(self) -> int:
        return min(len(self.loader), self.n)

    def __iter__(self):
        if self.restart and hasattr(self.loader, "reset"):
            self.loader.reset()
        yield from itertools.islice(self.loader, self.n)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


def first_batches_validator(n: int) -> type:
    """Ultralytics' detection validator on the first ``n`` batches of the split (``YOLO.val(validator=...)``)."""
    from ultralytics.models.yolo.detect import DetectionValidator

    class FirstBatchesValidator(DetectionValidator):
        def get_dataloader(self, dataset_path, batch_size):
            return FirstBatches(super().get_dataloader(dataset_path, batch_size), n, restart=True)

    return FirstBatchesValidator


def _on_train_epoch_start(trainer) -> None:
    trainer.start_train_epoch()


def _on_train_epoch_end(trainer) -> None:
    trainer.end_train_epoch()


def _on_fit_epoch_end(trainer) -> None:
    trainer.end_fit_epoch()


def _offline_check_amp(check_amp):
    """Ultralytics' AMP check where its reference model is on disk; otherwise AMP stays on unchecked
    (the check would download ``yolo26n.pt``)."""

    def check(model) -> bool:
        from ultralytics.utils import WEIGHTS_DIR

        return check_amp(model) if (Path(WEIGHTS_DIR) / "yolo26n.pt").is_file() else True

    return check


class _StageTrainer(DetectionTrainer):
    """Ultralytics' detection trainer with the stage's extra work around each step and epoch."""

    default_spec: StageSpec | None = None  # set by configured()

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict | None = None, _callbacks: dict | None = None, spec: StageSpec | None = None):
        """As Ultralytics builds a trainer (``trainer(overrides=..., _callbacks=...)``). The stage's
        spec is, in this order: ``spec``, the ``prune`` entry of ``overrides`` (PruneTrainer), the
        one carried in ``_callbacks`` (DDP workers), the class's own (:meth:`configured`), or the
        stage's default."""
        overrides = dict(overrides or {})
        options = overrides.pop(PRUNE_KEY, None)  # not an Ultralytics argument: get_cfg() would refuse it
        carried = copy(_callbacks) if _callbacks else callbacks.get_default_callbacks()
        if spec is None and options is not None:
            spec = self.spec_from_options(options)
        spec = spec or (carried.get(SPEC_KEY) or [None])[0] or self.default_spec or self.fallback_spec()
        carried[SPEC_KEY] = [spec]
        try:
            super().__init__(cfg, overrides, carried)
        except RuntimeError as err:  # get_dataset(): Ultralytics wraps every data problem in one
            raise data_error(err) from None
        self.spec: StageSpec = self.callbacks[SPEC_KEY][0]
        restore_threads(self.spec.threads)
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {"stage": self.spec.stage, "method": self.spec.method, "metrics": {}}
        self._epoch_row: dict[str, Any] | None = None
        self._rng_states: list[dict[str, Any]] | None = None  # every rank's, after the epoch's training and validation
        self._validated = False  # whether this epoch was validated
        self._val_setting: bool | None = None  # the `val` argument while an epoch without validation holds it off (eval_every)
        # resumed after the last epoch: only the stage's closing work (hard-pruning, final files) is left
        resumed_epoch = _checkpoint_epoch(Path(self.args.resume)) if self.resume else None
        self._closing_only = resumed_epoch is not None and resumed_epoch + 1 >= self.epochs

    @classmethod
    def spec_from_options(cls, options: Any) -> StageSpec:
        """The spec for ``train(prune=options)``; only PruneTrainer takes them."""
        raise ConfigError(f"{cls.__name__} takes no '{PRUNE_KEY}' options; use trainer=PruneTrainer to prune")

    @classmethod
    def fallback_spec(cls) -> StageSpec:
        """The spec when none is given."""
        raise ConfigError(f"{cls.__name__} needs a StageSpec")

    @classmethod
    def configured(cls, **options: Any) -> type:
        """This trainer class with its stage fixed by ``options``, for ``YOLO(...).train(trainer=...)``:
        ``PruneTrainer.configured(method="slr", rate=2.0)``, ``MaskedRetrainTrainer.configured(masks="masks.pt")``."""
        spec = cls.spec_from_keywords(**options)
        return type(cls.__name__, (cls,), {"default_spec": spec, "__module__": cls.__module__, "__doc__": cls.__doc__})

    @classmethod
    def spec_from_keywords(cls, **options: Any) -> StageSpec:
        return cls.spec_from_options(options)

    # set-up ---------------------------------------------------------------------------------
    def get_dataloader(self, dataset_path, batch_size: int = 16, rank: int = 0, mode: str = "train"):
        """Ultralytics' loader, cut to the spec's ``max_batches`` when that is set."""
        loader = super().get_dataloader(dataset_path, batch_size, rank, mode)
        if self.spec.max_batches is None:
            return loader
        return FirstBatches(loader, self.spec.max_batches, restart=mode == "val")

    def _setup_train(self):
        import ultralytics.engine.trainer as engine

        check_amp = engine.check_amp
        engine.check_amp = _offline_check_amp(check_amp)  # its reference model would be downloaded
        try:
            super()._setup_train()
        except (RuntimeError, FileNotFoundError) as err:  # the datasets are built here
            raised = data_error(err)
            if raised is err:
                raise
            raise raised from None
        finally:
            engine.check_amp = check_amp
        restore_threads(self.spec.threads)  # select_device() reset it
        self.add_callback("on_train_epoch_start", _on_train_epoch_start)
        self.add_callback("on_train_epoch_end", _on_train_epoch_end)
        self.add_callback("on_fit_epoch_end", _on_fit_epoch_end)
        self.setup_stage()
        if self.resume:
            self.load_resume_state(self.start_epoch - 1)
        elif RANK in {-1, 0}:
            for stale in self.wdir.glob(RESUME_STATE.format(epoch="*")):  # of an earlier run in this folder
                stale.unlink()

    def setup_stage(self) -> None:
        """Stage-specific set-up once the model, optimizer and EMA exist."""

    def resume_training(self, ckpt):
        """Ultralytics' resume, also after the last epoch (then only the closing work runs)."""
        if self._closing_only and ckpt is not None:
            self._load_checkpoint_state(ckpt)
            self.start_epoch = self.epochs
            return
        super().resume_training(ckpt)

    def _do_train(self):
        if not self._closing_only:
            return super()._do_train()
        if self.world_size > 1:
            self._setup_ddp()
        self._setup_train()
        self.epoch = self.epochs - 1
        self.final_eval()
        if RANK in {-1, 0}:
            self.run_callbacks("on_train_end")

    # exact resumption -----------------------------------------------------------------------
    def stage_state(self) -> dict[str, Any]:
        """Stage-specific state to resume from (e.g. the pruner's)."""
        return {}

    def load_stage_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`stage_state` saved."""

    def _random_state(self) -> dict[str, Any]:
        state = rng_state()
        loader = getattr(self, "train_loader", None)
        if loader is not None and getattr(loader, "generator", None) is not None:
            state["loader"] = loader.generator.get_state()
        buffer = getattr(getattr(loader, "dataset", None), "buffer", None)
        state["buffer"] = list(buffer) if isinstance(buffer, list) else None  # mosaic partners come from it
        return state

    def _set_random_state(self, state: dict[str, Any]) -> None:
        loader = self.train_loader
        dataset = loader.dataset
        if state.get("buffer") is not None and isinstance(getattr(dataset, "buffer", None), list):
            dataset.buffer.clear()
            for index in state["buffer"]:  # reloads those images and refills the buffer in its order
                dataset.load_image(index)
        if state.get("loader") is not None and getattr(loader, "generator", None) is not None:
            loader.generator.set_state(state["loader"])
        set_rng_state(state)

    def _save_resume_state(self) -> None:
        """The exact state after this epoch, written (atomically) before ``last.pt`` names the epoch."""
        if self._rng_states is None:
            return
        rows = self.rows + ([self._completed_row()] if self._epoch_row is not None else [])
        atomic_torch_save({
            "epoch": self.epoch,
            "model": unwrap_model(self.model).state_dict(),
            "ema": self.ema.ema.state_dict(),
            "ema_updates": self.ema.updates,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rows": rows,
            "loss": self.loss, "loss_items": self.loss_items,  # the validator sizes its loss sums by them
            "stage": self.stage_state(),
            "rng": self._rng_states,
        }, self.wdir / RESUME_STATE.format(epoch=self.epoch))

    def load_resume_state(self, epoch: int) -> None:
        """Continue from the end of ``epoch``: float32 weights, EMA, optimizer, stage state, rows and
        this rank's random state replace what Ultralytics restored from ``last.pt``."""
        path = self.wdir / RESUME_STATE.format(epoch=epoch)
        if not path.is_file():
            raise ConfigError(f"{path} is missing: {self.args.resume} cannot be resumed exactly; "
                              "delete the stage folder to start it over")
        state = torch.load(path, map_location=self.device, weights_only=False)
        unwrap_model(self.model).load_state_dict(state["model"])
        self.ema.ema.load_state_dict(state["ema"])
        self.ema.updates = state["ema_updates"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.rows = list(state["rows"])
        self.loss, self.loss_items = state.get("loss"), state.get("loss_items")
        self.load_stage_state(state["stage"])
        ranks = state["rng"]
        if len(ranks) == max(self.world_size, 1):  # another number of processes: the data order differs anyway
            self._set_random_state(ranks[max(RANK, 0)])

    # the step -------------------------------------------------------------------------------
    def optimizer_step(self):
        """Unscale, stage gradient work, clip, step, EMA update (Ultralytics' order plus the hooks)."""
        self.scaler.unscale_(self.optimizer)
        self.before_clip()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=MAX_GRAD_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema:
            self.ema.update(self.model)
            self.after_ema_update()

    def before_clip(self) -> None:
        """Work on the unscaled gradients before clipping."""

    def after_ema_update(self) -> None:
        """Work on the EMA copy after it followed the model."""

    # the epoch ------------------------------------------------------------------------------
    def start_train_epoch(self) -> None:
        """A fresh train-loader iterator each epoch: its order then depends only on the loader's
        generator, which the resume state restores (a running iterator draws lazily)."""
        if hasattr(self.train_loader, "reset"):
            self.train_loader.reset()
        self._validated = False

    def epoch_loss(self) -> float:
        """Mean training loss of the epoch (box + cls + dfl, no penalty)."""
        return float(sum(float(v) for v in self.tloss.values())) if self.tloss else float("nan")

    def end_train_epoch(self) -> None:
        """Called on every rank after the epoch's last step, before validation."""
        self._epoch_row = history_row(self.spec.stage, self.epoch, self.epoch_loss(), None, None)
        self._rng_states = distributed.all_gather_object(self._random_state())  # again after validation, if any
        every = int(self.spec.eval_every)
        if every > 1 and (self.epoch + 1) % every:  # Ultralytics validates when `val` is on, and after the last epoch
            self._val_setting, self.args.val = self.args.val, False

    def _restore_val(self) -> None:
        """The `val` argument as given, once the epoch's validation was decided (before any checkpoint records it)."""
        if self._val_setting is not None:
            self.args.val, self._val_setting = self._val_setting, None

    def validate(self):
        """Ultralytics' validation (every rank), then every rank's random state: its Format step
        draws from Python's generator, so the state to resume from is the one after it."""
        self._restore_val()
        result = super().validate()
        self._validated = True
        self._rng_states = distributed.all_gather_object(self._random_state())
        return result

    def _completed_row(self) -> dict[str, Any]:
        """The epoch's row with its validation metrics (None for an epoch that was not validated)."""
        metrics = detection_metrics(self.metrics) if self._validated else None
        return {**self._epoch_row, "metrics": metrics}

    def end_fit_epoch(self) -> None:
        """Called after validation and saving; records the epoch and writes ``stage.json``."""
        self._restore_val()
        if self._epoch_row is None:
            return
        self.rows.append(self._completed_row())
        self._epoch_row = None
        self.write_summary()

    def save_model(self):
        """Ultralytics' checkpoint, written atomically; for ``last.pt`` the exact resume state first."""
        self._restore_val()
        target = self.last
        if target == self.wdir / "last.pt":
            self._save_resume_state()
        partial = target.with_name(f".{target.name}.partial")
        self.last = partial
        try:
            saved = super().save_model()
        finally:
            self.last = target
        if saved:
            os.replace(partial, target)
            if target == self.wdir / "last.pt":
                for old in self.wdir.glob(RESUME_STATE.format(epoch="*")):
                    if old.name != RESUME_STATE.format(epoch=self.epoch):
                        old.unlink()
        return saved

    def final_eval(self):
        """The last epoch's metrics stand for the stage (Ultralytics would re-validate best.pt); the
        stage's checkpoints are stripped of their optimizer state, as Ultralytics strips them."""
        last = next((r["metrics"] for r in reversed(self.rows) if r["metrics"]), None)
        self.summary["metrics"]["final"] = last
        self.finish_stage()
        if RANK in {-1, 0}:
            for path in dict.fromkeys((self.last, self.best)):  # best may be last, or pruned.pt (already stripped)
                if path.exists():
                    partial = path.with_name(f".{path.name}.partial")
                    strip_optimizer(path, str(partial))  # atomically: a stripped last.pt is not resumable
                    os.replace(partial, path)
            for state in self.wdir.glob(RESUME_STATE.format(epoch="*")):  # nor needed any more
                state.unlink()
        self.write_summary()

    def finish_stage(self) -> None:
        """Stage-specific work after the last epoch."""

    def write_summary(self) -> None:
        if RANK not in {-1, 0}:
            return
        data = {**self.summary, "history": self.rows, "spec": asdict(self.spec), "save_dir": str(self.save_dir)}
        text = json.dumps(data, indent=2, default=_json_default)
        atomic_write(self.save_dir / "stage.json", lambda f: f.write(text + "\n"))


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class DenseTrainer(_StageTrainer):
    """Plain Ultralytics training with per-epoch metrics in ``stage.json``."""

    @classmethod
    def fallback_spec(cls) -> StageSpec:
        return StageSpec("dense")

    @classmethod
    def spec_from_keywords(cls, threads: int = 0) -> StageSpec:
        return StageSpec("dense", threads=int(threads))


class PruneTrainer(_StageTrainer):
    """SLR or ADMM training in Ultralytics' loop, then hard-pruning.

    Configured as Ultralytics users call a trainer::

        model = YOLO("yolov8n.yaml")     # or a trained checkpoint
        model.train(trainer=PruneTrainer, prune={"method": "slr", "rate": 2.0}, data=..., epochs=...)
        model.train(trainer=PruneTrainer.configured(method="admm", rate=3.0), data=..., epochs=...)

    The penalty gradient is added to the unscaled gradients of the pruned weights at every
    step; the pruner's ``update()`` runs after every epoch with the epoch's mean loss and updates
    Z and the multipliers on every ``update_every``-th call (the spec's ``pruner_settings``, which
    also hold the method's hyperparameters; the stage's ``epochs`` are added). With the spec's
    ``eval_every`` > 1 Ultralytics validates only every n-th epoch and the last. The pruner's state
    lives in the trainer (``self.pruner``) and, for resuming, in each epoch's
    ``weights/resume_e<epoch>.pt``. After the last epoch the model is hard-pruned, the same masks are applied to the EMA copy, which is
    validated and saved as ``weights/pruned.pt`` (masks in ``weights/masks.pt``). ``pruned.pt`` is
    the trainer's ``best``, so the model Ultralytics hands back after ``train()`` is the pruned
    one; the pre-pruning ``best.pt`` is removed and ``last.pt`` holds the model after training.
    """

    pruner = None
    masks: Masks | None = None

    @classmethod
    def spec_from_options(cls, options: Any) -> StageSpec:
        return prune_spec(options)

    @classmethod
    def spec_from_keywords(cls, threads: int = 0, **options: Any) -> StageSpec:
        return prune_spec(options, threads=threads)

    @classmethod
    def fallback_spec(cls) -> StageSpec:
        raise ConfigError(f"PruneTrainer needs its pruning options: train(trainer=PruneTrainer, {PRUNE_KEY}={{'method': 'slr', 'rate': 2.0}}) "
                          f"or trainer=PruneTrainer.configured(method='slr', rate=2.0) (options: {', '.join(SPARSITY_OPTIONS)}, the method's hyperparameters, "
                          f"{', '.join(SCHEDULE_OPTIONS)})")

    def setup_stage(self) -> None:
        """The pruner, with the spec's settings (hyperparameters, update_every) and this stage's epochs."""
        model = unwrap_model(self.model)
        settings = {"epochs": self.epochs, **self.spec.pruner_settings}
        self.pruner = build_pruner(self.spec.method, model, expand_patterns(self.spec.sparsity, model), **settings)
        self.summary["pruned_layers"] = list(self.pruner.names)

    def stage_state(self) -> dict[str, Any]:
        return {"pruner": self.pruner.state_dict()}

    def load_stage_state(self, state: dict[str, Any]) -> None:
        self.pruner.load_state_dict(state["pruner"])

    def before_clip(self) -> None:
        self.pruner.add_penalty_grad()

    def end_train_epoch(self) -> None:
        super().end_train_epoch()
        record = self.pruner.update(self._epoch_row["loss"])  # all ranks: the loss is averaged over them
        self._epoch_row = history_row(self.spec.stage, self.epoch, self._epoch_row["loss"], None, record)
        # the pruner's state travels in weights/resume_e<epoch>.pt (stage_state()), written with last.pt

    def finish_stage(self) -> None:
        self.summary["metrics"]["after_training"] = self.summary["metrics"]["final"]
        self.masks = self.pruner.hard_prune()
        self.masks.apply_(self.ema.ema)
        metrics, self.fitness = self.validate()
        self.summary["metrics"]["after_hard_pruning"] = detection_metrics(metrics)
        self.summary["pruner_history"] = self.pruner.history
        stats = compression_stats(self.ema.ema, self.pruner.names)
        self.summary["compression"] = {"pruned_layers": stats.pruned_layers_rate, "whole_model": stats.whole_model_rate}
        pruned = self.wdir / "pruned.pt"
        if RANK in {-1, 0}:
            self.metrics = metrics or self.metrics
            trained_last, trained_best = self.last, self.best
            self.last = self.best = pruned  # save_model() writes the (masked) EMA copy here
            self.best_fitness = self.fitness
            self.save_model()  # stripped by final_eval(), as the trainer's best
            self.last = trained_last
            if trained_best.exists() and trained_best != pruned:
                trained_best.unlink()  # the best epoch before hard-pruning: dense, not this stage's result
            atomic_torch_save(self.masks.state_dict(), self.wdir / "masks.pt")
            self.summary["checkpoints"] = {"trained": str(trained_last), "pruned": str(pruned), "masks": str(self.wdir / "masks.pt")}
            LOGGER.info(f"{self.spec.method}: hard-pruned {len(self.pruner.names)} layers to {stats.pruned_layers_rate:.3f}x "
                        f"(whole model {stats.whole_model_rate:.3f}x), saved {pruned}")
        self.best = pruned  # Ultralytics' train() loads the trainer's best: the user gets the pruned model


class MaskedRetrainTrainer(_StageTrainer):
    """Masked retraining (fine-tuning) of a hard-pruned model: pruned weights stay exactly zero in
    the model, in the optimizer state and in the EMA copy that Ultralytics validates and saves.

    ``YOLO("pruned.pt").train(trainer=MaskedRetrainTrainer, data=..., epochs=...)`` keeps every zero of
    the loaded weights; ``MaskedRetrainTrainer.configured(masks="weights/masks.pt")`` keeps those of
    saved masks instead. Ultralytics' own trainer (a plain ``.train()``) lets the zeros regrow.
    """

    masks: Masks | None = None

    @classmethod
    def fallback_spec(cls) -> StageSpec:
        return retrain_spec()

    @classmethod
    def spec_from_keywords(cls, masks: str | Path | None = None, threads: int = 0) -> StageSpec:
        return retrain_spec(masks, threads)

    def setup_stage(self) -> None:
        model = unwrap_model(self.model)
        if self.spec.masks:
            self.masks = Masks.from_state_dict(model, torch.load(self.spec.masks, map_location="cpu", weights_only=True))
        else:  # no saved masks: the zeros of the loaded (trainable) weights are the pruned entries
            names = [n for n, p in model.named_parameters() if p.dim() > 1 and p.requires_grad and bool((p == 0).any())]
            self.masks = Masks.from_model(model, names)
        self.masks.attach(self.optimizer)  # masks weights and optimizer state after every step
        self.masks.apply_(self.ema.ema)
        self.summary["pruned_layers"] = list(self.masks.names)

    def before_clip(self) -> None:
        self.masks.mask_grads_()  # so that clipping sees only the kept weights' gradients

    def after_ema_update(self) -> None:
        self.masks.apply_(self.ema.ema)

    def finish_stage(self) -> None:
        self.summary["metrics"]["after_retraining"] = self.summary["metrics"]["final"]
        stats = compression_stats(self.ema.ema, self.masks.names)
        self.summary["compression"] = {"pruned_layers": stats.pruned_layers_rate, "whole_model": stats.whole_model_rate}
        self.summary["checkpoints"] = {"retrained": str(self.last), "best": str(self.best)}
