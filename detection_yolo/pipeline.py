"""The three-stage pipeline (dense, SLR/ADMM training + hard-pruning, masked retraining) run
through Ultralytics' own trainer, and its results file in core's schema.

``core.harness.pipeline.run_pipeline`` owns the epoch loop, while Ultralytics must own it here (its
dataloaders, EMA, warm-up, validation and checkpoints), so each stage is one Ultralytics
trainer from :mod:`detection_yolo.trainer`, and this module assembles the stages' ``stage.json``
files into one ``results.json`` with the keys of :data:`core.harness.results.REQUIRED_KEYS`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from core.errors import ConfigError, DataError
from core.harness.grid import run_name
from core.harness.pipeline import PruningRecipe
from core.harness.results import build_results, read_results, write_results
from core.harness.run_log import RunLogger
from core.harness.snapshots import SNAPSHOT_FILE, pick_layers, save_snapshots, weight_snapshot

from .data import coco128_data_yaml, generate_shapes_dataset
from .data_check import check_splits, dataset_name, resolve_data_yaml
from .models import ModelSource, resolve_model

__all__ = ["TableRun", "table_runs", "check_config", "check_models", "prepare_data", "train_dense", "run_yolo_pipeline", "run_table", "evaluate_checkpoint"]

TASK = "detection_yolo"
PRIMARY_METRIC = "mAP50"
# Ultralytics arguments every stage gets: no workers (CPU-friendly, no forked processes), one
# backward per optimizer step (nbs = batch), deterministic seeds, quiet
FIXED_ARGS = {"workers": 0, "exist_ok": True, "verbose": False, "deterministic": True}
# pruning keys that set every run's schedule (the keys other tasks use); the rest are method hyperparameters
SCHEDULE_KEYS = ("epochs", "retrain_epochs")


@dataclass
class TableRun:
    """One row of Table 2: a model pruned to ``rate`` in ``epochs`` epochs, then retrained.
    ``model`` is any Ultralytics detection model: a name, a YAML or a checkpoint (models.py)."""

    model: str
    rate: float
    epochs: int
    retrain_epochs: int = 0

    @property
    def model_label(self) -> str:
        name = Path(str(self.model)).name
        for suffix in (".yaml", ".yml", ".pt"):
            name = name.removesuffix(suffix)
        return name

    @property
    def label(self) -> str:
        return f"{self.model_label}_{self.rate:g}x"


def table_runs(config: Mapping[str, Any]) -> list[TableRun]:
    """The config's runs; ``pruning.epochs`` / ``pruning.retrain_epochs``, when set, apply to every run."""
    runs = config.get("runs") or []
    if not runs:
        raise ConfigError("the config lists no runs; add 'runs: [{model: yolov3-tiny, rate: 2.0, epochs: 20}]'")
    schedule = {k: v for k, v in dict(config.get("pruning") or {}).items() if k in SCHEDULE_KEYS}
    try:
        return [TableRun(**{**run, **schedule}) for run in runs]
    except TypeError as err:
        raise ConfigError(f"a run entry has unknown or missing keys ({err}); use model, rate, epochs, retrain_epochs") from None


def check_config(config: Mapping[str, Any], methods: Iterable[str] = ("slr",)) -> list[TableRun]:
    """The config's runs, each made into core's recipe once, so that config errors end the run
    before anything is written or trained."""
    runs = table_runs(config)
    for run in runs:
        for method in methods:
            make_recipe(config, run, method, 0)
    train_args(config, Path("data.yaml"), 0)
    return runs


def model_source(config: Mapping[str, Any], run: TableRun, work_dir: Path) -> ModelSource:
    """Where the run's model is built from (a YAML, narrowed by ``models.<label>.width_multiple``, or a checkpoint)."""
    build = (config.get("models") or {}).get(run.model_label) or {}
    return resolve_model(run.model, Path(work_dir) / "models", build.get("width_multiple"))


def check_models(config: Mapping[str, Any], work_dir: Path) -> None:
    """Every run's model exists and is a detection model (one line otherwise), before any training."""
    for run in table_runs(config):
        model = model_source(config, run, work_dir)
        if model.checkpoint:
            from ultralytics import YOLO

            try:
                task = YOLO(model.source).task
            except Exception as err:
                raise ConfigError(f"{model.source} is not an Ultralytics checkpoint ({type(err).__name__}); give a trained .pt") from None
            if task != "detect":
                raise ConfigError(f"{model.source} is a {task} model; this task prunes detection models")


def prepare_data(config: Mapping[str, Any], work_dir: Path, data_root: Path | None, datasets_dir: Path | None = None,
                 log=print) -> Path:
    """The checked data YAML of the config's ``data``: ``shapes`` (generated), ``coco128`` (the
    sample under the data root) or an Ultralytics data YAML (relative to the data root), resolved
    into ``work_dir/data`` as Ultralytics will read it. Every split is verified (data_check.py) and
    what Ultralytics will drop is reported through ``log``."""
    data = config.get("data")
    if data == "shapes":
        shapes = dict(config.get("shapes") or {})
        target = work_dir / "data" / "shapes"
        path = target / "data.yaml" if (target / "data.yaml").is_file() else generate_shapes_dataset(target, **shapes)
    elif data == "coco128":
        if data_root is None:
            raise DataError("data 'coco128' needs --data-root (or SLR_DATA_ROOT) naming a folder that holds coco128/")
        path = coco128_data_yaml(data_root / "coco128", work_dir / "data" / "coco128")
    elif not data:
        raise ConfigError("the config has no 'data'; set shapes, coco128 or the path of an Ultralytics data YAML")
    else:
        path = Path(data)
        if not path.is_absolute() and data_root is not None:
            path = data_root / path
        path = resolve_data_yaml(path, work_dir / "data", datasets_dir)
    check_splits(path, cache_dir=work_dir / "data", log=log)
    return path


def train_args(config: Mapping[str, Any], data_yaml: Path, seed: int, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Ultralytics overrides for one stage: the config's ``train`` section, the data, and the
    settings that make one backward one optimizer step."""
    args = {**FIXED_ARGS, **dict(config.get("train") or {}), **dict(extra or {})}
    if "optimizer" not in args or args["optimizer"] == "auto":
        raise ConfigError("train.optimizer must name the optimizer (e.g. SGD): 'auto' picks its own learning rate")
    args.update(data=str(data_yaml), seed=int(seed), nbs=int(args["batch"]), device=str(config.get("device", "")))
    if args["device"] == "cpu":
        args["amp"] = False
    return args


def _spec_threads(config: Mapping[str, Any]) -> int:
    return int(config.get("threads") or 0)


def _read_stage(save_dir: Path) -> dict[str, Any] | None:
    path = save_dir / "stage.json"
    return json.loads(path.read_text()) if path.is_file() else None


def evaluate_checkpoint(weights: Path, config: Mapping[str, Any], data_yaml: Path, save_dir: Path) -> dict[str, float]:
    """Validate a saved detection checkpoint with Ultralytics' validator; metrics in percent."""
    from ultralytics import YOLO

    from .data_errors import data_error
    from .trainer import detection_metrics
    from .ultralytics_env import restore_threads

    model = YOLO(str(weights))
    if model.task != "detect":
        raise ConfigError(f"{weights} is a {model.task} model; this task prunes detection models")
    train = dict(config.get("train") or {})
    try:
        metrics = model.val(data=str(data_yaml), imgsz=train.get("imgsz", 640), batch=train.get("batch", 16) * 2,
                            device=str(config.get("device", "")), workers=0, plots=False, verbose=False,
                            project=str(save_dir.parent), name=save_dir.name, exist_ok=True)
    except (RuntimeError, FileNotFoundError) as err:
        raised = data_error(err)
        if raised is err:
            raise
        raise raised from None
    restore_threads(_spec_threads(config))
    return detection_metrics(metrics.results_dict)


def dense_settings(config: Mapping[str, Any], label: str) -> dict[str, Any]:
    """The dense model's ``checkpoint`` and ``epochs``: ``dense.<model>``, else the ``dense`` section's own."""
    section = dict(config.get("dense") or {})
    generic = {k: section[k] for k in ("checkpoint", "epochs") if k in section}
    return {**generic, **dict(section.get(label) or {})}


def train_dense(config: Mapping[str, Any], model: ModelSource, out_root: Path, data_yaml: Path, resume: bool = False) -> tuple[Path, dict[str, float], dict[str, Any]]:
    """The dense model: the checkpoint the run names (``model: x.pt`` or ``dense.checkpoint``), or
    one trained here (once per model, shared by every run). Returns its weights, its metrics and a description."""
    from .trainer import DenseTrainer, StageSpec, resume_overrides

    dense = dense_settings(config, model.label)
    out_root = Path(out_root).resolve()
    save_dir = out_root / f"dense_{model.label}"
    checkpoint = model.source if model.checkpoint else dense.get("checkpoint")
    if checkpoint:
        weights = Path(checkpoint)
        if not weights.is_file():
            raise DataError(f"dense checkpoint {weights} not found; train one or fix dense.checkpoint (or dense.{model.label}.checkpoint)")
        return weights, evaluate_checkpoint(weights, config, data_yaml, save_dir), {"checkpoint": str(weights)}
    weights, stage = save_dir / "weights" / "last.pt", _read_stage(save_dir)
    if not (resume and weights.is_file() and stage and stage["metrics"].get("final")):
        epochs = int(dense.get("epochs", 0))
        if epochs < 1:
            raise ConfigError(f"the dense {model.label} needs dense.checkpoint (a path) or dense.epochs >= 1 to be trained here "
                              f"(or dense.{model.label}.checkpoint / .epochs)")
        extra = {**dict((config.get("dense") or {}).get("train") or {}), "model": model.source,
                 "epochs": epochs, "project": str(out_root), "name": save_dir.name, **resume_overrides(save_dir, resume)}
        DenseTrainer(overrides=train_args(config, data_yaml, config.get("dense_seed", 0), extra),
                     spec=StageSpec("dense", threads=_spec_threads(config))).train()
        stage = _read_stage(save_dir)
    return weights, stage["metrics"]["final"], {"trained_here": True, "epochs": len(stage["history"]), "history": stage["history"]}


def run_yolo_pipeline(config: Mapping[str, Any], run: TableRun, method: str, seed: int, out_dir: Path, data_yaml: Path,
                      dense: tuple[Path, dict[str, float], dict[str, Any]], resume: bool = False) -> dict[str, Any]:
    """Prune the dense model with ``method`` as ``run`` says, hard-prune, retrain, and write
    ``out_dir/results.json``. With ``resume`` finished stages are reused and a stage stopped
    between epochs continues from its last epoch (Ultralytics' resume plus the exact state)."""
    from ultralytics import YOLO

    from core import compression_stats

    from .trainer import MaskedRetrainTrainer, PruneTrainer, StageSpec, resume_overrides

    started = time.time()
    out_dir = Path(out_dir).resolve()
    recipe = make_recipe(config, run, method, seed)
    dense_weights, dense_metrics, dense_info = dense
    hyper = {k: getattr(recipe, k) for k in ("rho", "s0", "M", "r")}
    threads = _spec_threads(config)

    prune_dir = out_dir / "prune"
    stage = _read_stage(prune_dir) if resume else None
    if not (stage and stage["metrics"].get("after_hard_pruning") and (prune_dir / "weights" / "pruned.pt").is_file()):
        extra = {"model": str(dense_weights), "epochs": run.epochs, "project": str(out_dir), "name": "prune",
                 **resume_overrides(prune_dir, resume)}
        spec = StageSpec("prune", method, recipe.sparsity.to_dict(), hyper, threads=threads)
        PruneTrainer(overrides=train_args(config, data_yaml, seed, extra), spec=spec).train()
        stage = _read_stage(prune_dir)
    prune_stage = stage
    final_weights = prune_dir / "weights" / "pruned.pt"
    metrics = {"dense": dense_metrics, "after_training": prune_stage["metrics"]["after_training"],
               "after_hard_pruning": prune_stage["metrics"]["after_hard_pruning"]}
    history = list(prune_stage["history"])

    snapshots = out_dir / SNAPSHOT_FILE
    if not snapshots.is_file():
        layers = pick_layers(prune_stage["pruned_layers"])
        save_snapshots(snapshots, {stage: weight_snapshot(YOLO(str(path)).model, layers) for stage, path in (
            ("dense", dense_weights), ("after_training", prune_dir / "weights" / "last.pt"), ("after_hard_pruning", final_weights))})

    if run.retrain_epochs > 0:
        retrain_dir = out_dir / "retrain"
        stage = _read_stage(retrain_dir) if resume else None
        if not (stage and stage["metrics"].get("after_retraining")):
            extra = {**dict(config.get("retrain_train") or {}), "model": str(final_weights), "epochs": run.retrain_epochs,
                     "project": str(out_dir), "name": "retrain", **resume_overrides(retrain_dir, resume)}
            spec = StageSpec("retrain", masks=str(prune_dir / "weights" / "masks.pt"), threads=threads)
            MaskedRetrainTrainer(overrides=train_args(config, data_yaml, seed, extra), spec=spec).train()
            stage = _read_stage(retrain_dir)
        metrics["after_retraining"] = stage["metrics"]["after_retraining"]
        history += stage["history"]
        final_weights = retrain_dir / "weights" / "last.pt"
    else:
        metrics["after_retraining"] = dict(metrics["after_hard_pruning"])

    logger = RunLogger(out_dir)  # log.csv and TensorBoard events of both training stages
    for count in range(1, len(history) + 1):
        logger.log(history[:count], count)
    logger.close()

    stats = compression_stats(YOLO(str(final_weights)).model, prune_stage["pruned_layers"])
    results = build_results(
        task=TASK, model=run.model_label, dataset=dataset_name(data_yaml), method=method,
        profile=str(config.get("profile", "smoke")), seed=seed, target_compression=run.rate, stats=stats,
        primary_metric=PRIMARY_METRIC, metrics=metrics, history=history, pruner_history=prune_stage.get("pruner_history", []),
        config={"recipe": recipe.as_dict(), "task": {**dict(config), "run": vars(run), "data_yaml": str(data_yaml),
                                                     "dense": {"weights": str(dense_weights), **{k: v for k, v in dense_info.items() if k != "history"}}}},
        wall_time_s=time.time() - started,
        checkpoints={"pruned": str(prune_dir / "weights" / "pruned.pt"), "final": str(final_weights)},
        heatmaps=SNAPSHOT_FILE,  # relative to the results file
    )
    write_results(out_dir / "results.json", results)
    return results


def make_recipe(config: Mapping[str, Any], run: TableRun, method: str, seed: int) -> PruningRecipe:
    """The run as core's recipe (method, sparsity over the config's layers, schedule, hyperparameters)."""
    sparsity = {**dict(config.get("sparsity") or {}), "target_rate": float(run.rate)}
    pruning = {k: v for k, v in dict(config.get("pruning") or {}).items() if k not in SCHEDULE_KEYS}
    try:
        return PruningRecipe(method=method, sparsity=sparsity, epochs=run.epochs, retrain_epochs=run.retrain_epochs, seed=seed,
                             profile=str(config.get("profile", "smoke")), **pruning)
    except TypeError as err:
        raise ConfigError(f"the pruning section has an unknown key ({err}); use rho, s0, M, r, epochs, retrain_epochs") from None


def run_table(config: Mapping[str, Any], methods: Iterable[str], seeds: Iterable[int], out_root: Path,
              data_root: Path | None = None, resume: bool = False, data_yaml: Path | None = None) -> list[dict[str, Any]]:
    """Every run of the config for every method and seed, each in ``out_root/<method>_<model>_<rate>x_seed<seed>``
    (``data_yaml``: the checked data YAML when :func:`prepare_data` already ran)."""
    from ultralytics.utils import DATASETS_DIR

    out_root = Path(out_root).resolve()  # Ultralytics puts a relative project under its own runs folder
    runs, methods, seeds = table_runs(config), list(methods), list(seeds)
    if data_yaml is None:
        data_yaml = prepare_data(config, out_root, data_root, Path(DATASETS_DIR))
    dense: dict[str, tuple] = {}
    results = []
    for run in runs:
        model = model_source(config, run, out_root)
        if model.label not in dense:
            dense[model.label] = train_dense(config, model, out_root, data_yaml, resume=resume)
        for seed in seeds:
            for method in methods:
                out_dir = out_root / run_name(make_recipe(config, run, method, seed), run.label)
                if resume and (out_dir / "results.json").is_file():
                    results.append(read_results(out_dir / "results.json"))
                    continue
                results.append(run_yolo_pipeline(config, run, method, seed, out_dir, data_yaml, dense[model.label], resume=resume))
    return results
