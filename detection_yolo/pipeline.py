"""The three-stage pipeline (dense, SLR/ADMM training + hard-pruning, masked retraining) run
through Ultralytics' own trainer, and its results file in core's schema.

``core.pipeline.run_pipeline`` owns the epoch loop, while Ultralytics must own it here (its
dataloaders, EMA, warm-up, validation and checkpoints), so each stage is one Ultralytics
trainer from :mod:`detection_yolo.trainer`, and this module assembles the stages' ``stage.json``
files into one ``results.json`` with the keys of :data:`core.results.REQUIRED_KEYS`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from core.errors import ConfigError, DataError
from core.grid import run_name
from core.pipeline import PruningRecipe
from core.results import build_results, read_results, write_results
from core.run_log import RunLogger
from core.snapshots import SNAPSHOT_FILE, pick_layers, save_snapshots, weight_snapshot

from .data import check_data_yaml, coco128_data_yaml, generate_shapes_dataset
from .models import model_yaml

__all__ = ["TableRun", "table_runs", "prepare_data", "train_dense", "run_yolo_pipeline", "run_table", "evaluate_checkpoint"]

TASK = "detection_yolo"
PRIMARY_METRIC = "mAP50"
# Ultralytics arguments every stage gets: no workers (CPU-friendly, no forked processes), one
# backward per optimizer step (nbs = batch), deterministic seeds, quiet
FIXED_ARGS = {"workers": 0, "exist_ok": True, "verbose": False, "deterministic": True}


@dataclass
class TableRun:
    """One row of Table 2: a model pruned to ``rate`` in ``epochs`` epochs, then retrained."""

    model: str
    rate: float
    epochs: int
    retrain_epochs: int = 0

    @property
    def label(self) -> str:
        return f"{self.model}_{self.rate:g}x"


def table_runs(config: Mapping[str, Any]) -> list[TableRun]:
    runs = config.get("runs") or []
    if not runs:
        raise ConfigError("the config lists no runs; add 'runs: [{model: yolov3-tiny, rate: 2.0, epochs: 20}]'")
    try:
        return [TableRun(**run) for run in runs]
    except TypeError as err:
        raise ConfigError(f"a run entry has unknown or missing keys ({err}); use model, rate, epochs, retrain_epochs") from None


def prepare_data(config: Mapping[str, Any], work_dir: Path, data_root: Path | None) -> Path:
    """The data YAML of the config's ``data``: ``shapes`` (generated), ``coco128`` (the sample
    under the data root) or a path to an Ultralytics data YAML (relative to the data root)."""
    data = config.get("data")
    if data == "shapes":
        shapes = dict(config.get("shapes") or {})
        target = work_dir / "data" / "shapes"
        if (target / "data.yaml").is_file():
            return target / "data.yaml"
        return generate_shapes_dataset(target, **shapes)
    if data == "coco128":
        if data_root is None:
            raise DataError("data 'coco128' needs --data-root (or SLR_DATA_ROOT) naming a folder that holds coco128/")
        return coco128_data_yaml(data_root / "coco128", work_dir / "data" / "coco128")
    if not data:
        raise ConfigError("the config has no 'data'; set shapes, coco128 or the path of an Ultralytics data YAML")
    path = Path(data)
    if not path.is_absolute() and data_root is not None:
        path = data_root / path
    check_data_yaml(path)
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


def _model_source(config: Mapping[str, Any], name: str, work_dir: Path) -> Path:
    build = (config.get("models") or {}).get(name) or {}
    return model_yaml(name, work_dir / "models", build.get("width_multiple"))


def _spec_threads(config: Mapping[str, Any]) -> int:
    return int(config.get("threads") or 0)


def _read_stage(save_dir: Path) -> dict[str, Any] | None:
    path = save_dir / "stage.json"
    return json.loads(path.read_text()) if path.is_file() else None


def evaluate_checkpoint(weights: Path, config: Mapping[str, Any], data_yaml: Path, save_dir: Path) -> dict[str, float]:
    """Validate a saved checkpoint with Ultralytics' validator; metrics in percent."""
    from ultralytics import YOLO

    from .trainer import detection_metrics
    from .ultralytics_env import restore_threads

    train = dict(config.get("train") or {})
    metrics = YOLO(str(weights)).val(data=str(data_yaml), imgsz=train.get("imgsz", 640), batch=train.get("batch", 16) * 2,
                                     device=str(config.get("device", "")), workers=0, plots=False, verbose=False,
                                     project=str(save_dir.parent), name=save_dir.name, exist_ok=True)
    restore_threads(_spec_threads(config))
    return detection_metrics(metrics.results_dict)


def train_dense(config: Mapping[str, Any], model_name: str, out_root: Path, data_yaml: Path, resume: bool = False) -> tuple[Path, dict[str, float], dict[str, Any]]:
    """The dense model: the checkpoint the config names, or one trained here (once per model,
    shared by every run). Returns its weights, its metrics and a description."""
    from .trainer import DenseTrainer, StageSpec, resume_overrides

    dense = dict((config.get("dense") or {}).get(model_name) or {})
    out_root = Path(out_root).resolve()
    save_dir = out_root / f"dense_{model_name}"
    if dense.get("checkpoint"):
        weights = Path(dense["checkpoint"])
        if not weights.is_file():
            raise DataError(f"dense checkpoint {weights} not found; train one or fix dense.{model_name}.checkpoint")
        return weights, evaluate_checkpoint(weights, config, data_yaml, save_dir), {"checkpoint": str(weights)}
    weights, stage = save_dir / "weights" / "last.pt", _read_stage(save_dir)
    if not (resume and weights.is_file() and stage and stage["metrics"].get("final")):
        epochs = int(dense.get("epochs", 0))
        if epochs < 1:
            raise ConfigError(f"dense.{model_name} needs a checkpoint path or epochs >= 1 to train the dense model here")
        extra = {**dict((config.get("dense") or {}).get("train") or {}), "model": str(_model_source(config, model_name, out_root)),
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
        task=TASK, model=run.model, dataset=str(config.get("dataset", data_yaml.stem)), method=method,
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
    pruning = dict(config.get("pruning") or {})
    return PruningRecipe(method=method, sparsity=sparsity, epochs=run.epochs, retrain_epochs=run.retrain_epochs, seed=seed,
                         profile=str(config.get("profile", "smoke")), **pruning)


def run_table(config: Mapping[str, Any], methods: Iterable[str], seeds: Iterable[int], out_root: Path,
              data_root: Path | None = None, resume: bool = False) -> list[dict[str, Any]]:
    """Every run of the config for every method and seed, each in ``out_root/<method>_<model>_<rate>x_seed<seed>``."""
    out_root = Path(out_root).resolve()  # Ultralytics puts a relative project under its own runs folder
    runs, methods, seeds = table_runs(config), list(methods), list(seeds)
    data_yaml = prepare_data(config, out_root, data_root)
    dense: dict[str, tuple] = {}
    results = []
    for run in runs:
        if run.model not in dense:
            weights, metrics, info = train_dense(config, run.model, out_root, data_yaml, resume=resume)
            dense[run.model] = (weights, metrics, info)
        for seed in seeds:
            for method in methods:
                out_dir = out_root / run_name(make_recipe(config, run, method, seed), run.label)
                if resume and (out_dir / "results.json").is_file():
                    results.append(read_results(out_dir / "results.json"))
                    continue
                results.append(run_yolo_pipeline(config, run, method, seed, out_dir, data_yaml, dense[run.model], resume=resume))
    return results
