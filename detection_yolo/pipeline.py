"""The three-stage pipeline (dense, SLR/ADMM training + hard-pruning, masked retraining) run
through Ultralytics' own trainer, and its results file in core's schema.

``core.harness.pipeline.run_pipeline`` owns the epoch loop, while Ultralytics must own it here (its
dataloaders, EMA, warm-up, validation and checkpoints), so each stage is one Ultralytics
trainer from :mod:`detection_yolo.trainer`, and this module assembles the stages' ``stage.json``
files into one ``results.json`` with the keys of :data:`core.harness.results.REQUIRED_KEYS`.

The settings are an experiment's (:mod:`core.harness.recipe`'s schema; see configs/table2.yaml)
and each run is a :class:`~core.harness.recipe.PruningRecipe`: method, sparsity, schedule
(``epochs``, ``retrain_epochs``, ``update_every``, ``eval_every``) and hyperparameters. The
dense model follows the rules of :mod:`core.harness.dense`: ``dense.checkpoint`` (or a ``.pt``
model), else the cached one, else trained here with Ultralytics for ``dense.epochs`` from the
seed ``dense.seed``, else a clear error.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from core.errors import ConfigError, DataError
from core.harness.config import settings_digest
from core.harness.device import resolve_device
from core.harness.grid import finished_run
from core.harness.recipe import PruningRecipe
from core.harness.results import atomic_write, build_results, provenance, write_results
from core.harness.run_log import RunLogger
from core.harness.snapshots import SNAPSHOT_FILE, pick_layers, save_snapshots, weight_snapshot

from .data import coco128_data_yaml, generate_shapes_dataset
from .data_check import check_splits, dataset_name, resolve_data_yaml
from .models import ModelSource, resolve_model

__all__ = ["YoloData", "DenseWeights", "model_source", "check_model", "prepare_data", "ultralytics_device", "optimizer_args",
           "train_args", "dense_settings", "dense_model", "evaluate_checkpoint", "run_yolo_pipeline", "run_experiment"]

TASK = "detection_yolo"
PRIMARY_METRIC = "mAP50"
# Ultralytics arguments every stage gets: no workers (CPU-friendly, no forked processes), one
# backward per optimizer step (nbs = batch), deterministic seeds, quiet
FIXED_ARGS = {"workers": 0, "exist_ok": True, "verbose": False, "deterministic": True}
# Ultralytics arguments the `train` section may not hold: where each one is set instead
SET_ELSEWHERE = {"optimizer": "optimizer.name", "lr0": "optimizer.lr", "lrf": "optimizer.lrf", "momentum": "optimizer.momentum",
                 "weight_decay": "optimizer.weight_decay", "batch": "batch_size", "nbs": "batch_size", "device": "device (or --device)",
                 "seed": "seeds (dense.seed for the dense model)", "epochs": "pruning.epochs / pruning.retrain_epochs / dense.epochs",
                 "data": "data", "model": "model.name (or --model)", "project": "--out", "name": "--out", "resume": "--resume"}
# keys of the dense section; any other key is a per-model section (dense.<model>: {checkpoint, epochs, seed})
DENSE_KEYS = ("checkpoint", "epochs", "seed", "train", "optimizer")
PER_MODEL_DENSE_KEYS = ("checkpoint", "epochs", "seed")
# data.name values with their own meaning; any other name reads the Ultralytics data YAML data.yaml
GENERATED, SAMPLE = "shapes", "coco128"
SHAPES_KEYS = ("n_train", "n_val", "imgsz", "seed")


@dataclass(frozen=True)
class YoloData:
    """An experiment's checked data: the data YAML every stage reads, and what identifies it
    (the data settings and the data set's folder) for the dense-model cache."""

    yaml: Path
    identity: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DenseWeights:
    """The dense model a run prunes: its weights, its metrics and where it came from."""

    weights: Path
    metrics: dict[str, float]
    info: dict[str, Any]


# --- models and data ---------------------------------------------------------------------------
def model_source(settings: Mapping[str, Any], work_dir: Path) -> ModelSource:
    """Where the experiment's model is built from: ``model.name`` (a name, a YAML, narrowed by
    ``model.width_multiple``, or a checkpoint; a narrowed YAML is written to ``work_dir/models``)."""
    model = settings.get("model")
    if isinstance(model, str):
        model = {"name": model}
    if not isinstance(model, Mapping) or not model.get("name"):
        raise ConfigError("the model section needs a name, e.g. model: {name: yolov3-tiny} (or --model yolov8n.yaml)")
    return resolve_model(model["name"], Path(work_dir) / "models", model.get("width_multiple"))


def check_model(settings: Mapping[str, Any], work_dir: Path) -> ModelSource:
    """The experiment's model, checked to be a detection model (one line otherwise), before any training."""
    model = model_source(settings, work_dir)
    if model.checkpoint:
        from ultralytics import YOLO

        try:
            task = YOLO(model.source).task
        except Exception as err:
            raise ConfigError(f"{model.source} is not an Ultralytics checkpoint ({type(err).__name__}); give a trained .pt") from None
        if task != "detect":
            raise ConfigError(f"{model.source} is a {task} model; this task prunes detection models")
    return model


def prepare_data(data: Mapping[str, Any], work_dir: Path, root: Path | None, datasets_dir: Path | None = None,
                 log=print) -> Path:
    """The checked data YAML of the ``data`` section: ``name: shapes`` (generated, sized by
    ``n_train``, ``n_val``, ``imgsz``), ``name: coco128`` (the sample folder ``root``) or else
    ``yaml``, an Ultralytics data YAML relative to ``root`` (the data set's folder under the data
    root) or absolute, resolved into ``work_dir/data`` as Ultralytics will read it. Every split
    is verified (data_check.py) and what Ultralytics will drop is reported through ``log``."""
    if not isinstance(data, Mapping) or not data.get("name"):
        raise ConfigError("the data section needs a name: shapes (generated), coco128, or a data set read from data.yaml "
                          "(e.g. data: {name: coco, subdir: coco, yaml: coco.yaml})")
    name = str(data["name"])
    if name == GENERATED:
        target = work_dir / "data" / GENERATED
        shapes = {k: data[k] for k in SHAPES_KEYS if data.get(k) is not None}
        path = target / "data.yaml" if (target / "data.yaml").is_file() else generate_shapes_dataset(target, **shapes)
    elif name == SAMPLE and not data.get("yaml"):
        if root is None:
            raise DataError("data 'coco128' needs --data-root (or DATA_ROOT) naming a folder that holds coco128/")
        path = coco128_data_yaml(root, work_dir / "data" / SAMPLE)
    else:
        if not data.get("yaml"):
            raise ConfigError(f"data '{name}' needs data.yaml, the path of its Ultralytics data YAML (relative to the data set's folder)")
        path = Path(str(data["yaml"])).expanduser()
        if not path.is_absolute() and root is not None:
            path = root / path
        path = resolve_data_yaml(path, work_dir / "data", datasets_dir)
    check_splits(path, cache_dir=work_dir / "data", log=log)
    return path


def needs_data_root(data: Mapping[str, Any]) -> bool:
    """Whether the data section reads a data set under the data root (not generated, no absolute path, no data.root)."""
    if data.get("root") or data.get("name") == GENERATED:
        return False
    return not (data.get("yaml") and Path(str(data["yaml"])).expanduser().is_absolute())


# --- Ultralytics arguments ---------------------------------------------------------------------
def ultralytics_device(device: Any) -> str:
    """Ultralytics' ``device`` argument for a torch device (or what :func:`resolve_device` takes):
    the CPU is ``"cpu"``, ``cuda:N`` is ``"N"``."""
    device = resolve_device(device)
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda":
        return str(device.index or 0)
    if device.type == "mps":
        return "mps"
    raise ConfigError(f"device '{device}' cannot run Ultralytics here; use cpu or cuda:N")


def optimizer_args(settings: Mapping[str, Any], stage: str = "prune") -> dict[str, Any]:
    """Ultralytics' optimizer arguments from the ``optimizer`` section (``dense.optimizer`` /
    ``retrain_optimizer`` override it for those stages): ``name`` -> ``optimizer``, ``lr`` ->
    ``lr0``, the others (``lrf``, ``momentum``, ``weight_decay``, ...) under their own names."""
    cfg = dict(settings.get("optimizer") or {})
    if stage == "dense":
        cfg.update((settings.get("dense") or {}).get("optimizer") or {})
    elif stage == "retrain":
        cfg.update(settings.get("retrain_optimizer") or {})
    name = cfg.pop("name", None)
    if not name or str(name).lower() == "auto":
        raise ConfigError("optimizer.name must name the optimizer (e.g. SGD): 'auto' picks its own learning rate")
    args = {"optimizer": str(name)}
    if cfg.get("lr") is not None:
        args["lr0"] = cfg.pop("lr")
    cfg.pop("lr", None)
    return {**args, **cfg}


def train_args(settings: Mapping[str, Any], data_yaml: Path, seed: int, extra: Mapping[str, Any] | None = None,
               stage: str = "prune", device: Any = None) -> dict[str, Any]:
    """Ultralytics overrides for one stage: the ``train`` section (Ultralytics' own arguments),
    the optimizer, ``batch_size``, the device (``device``, else the settings'), the data, and the
    settings that make one backward one optimizer step."""
    train = dict(settings.get("train") or {})
    misplaced = [k for k in train if k in SET_ELSEWHERE]
    if misplaced:
        raise ConfigError(f"train.{misplaced[0]} is not a train setting here; set {SET_ELSEWHERE[misplaced[0]]} instead")
    if not settings.get("batch_size"):
        raise ConfigError("the config needs batch_size (Ultralytics' batch)")
    args = {**FIXED_ARGS, **train, **optimizer_args(settings, stage), "batch": int(settings["batch_size"]), **dict(extra or {})}
    args.update(data=str(data_yaml), seed=int(seed), nbs=int(args["batch"]),
                device=ultralytics_device(device if device is not None else settings.get("device")))
    if args["device"] == "cpu":
        args["amp"] = False
    return args


def _read_stage(save_dir: Path) -> dict[str, Any] | None:
    path = save_dir / "stage.json"
    return json.loads(path.read_text()) if path.is_file() else None


def evaluate_checkpoint(weights: Path, settings: Mapping[str, Any], data_yaml: Path, save_dir: Path, device: Any = None,
                        threads: int = 0, max_batches: int | None = None) -> dict[str, float]:
    """Validate a saved detection checkpoint with Ultralytics' validator (on its first
    ``max_batches`` batches when set); metrics in percent."""
    from ultralytics import YOLO

    from .data_errors import data_error
    from .trainer import detection_metrics, first_batches_validator
    from .ultralytics_env import restore_threads

    model = YOLO(str(weights))
    if model.task != "detect":
        raise ConfigError(f"{weights} is a {model.task} model; this task prunes detection models")
    train = dict(settings.get("train") or {})
    try:
        metrics = model.val(data=str(data_yaml), imgsz=train.get("imgsz", 640), batch=int(settings.get("batch_size") or 16) * 2,
                            device=ultralytics_device(device if device is not None else settings.get("device")), workers=0,
                            plots=False, verbose=False, project=str(save_dir.parent), name=save_dir.name, exist_ok=True,
                            validator=None if max_batches is None else first_batches_validator(max_batches))
    except (RuntimeError, FileNotFoundError) as err:
        raised = data_error(err)
        if raised is err:
            raise
        raise raised from None
    restore_threads(threads)
    return detection_metrics(metrics.results_dict)


# --- the dense model ---------------------------------------------------------------------------
def dense_settings(settings: Mapping[str, Any], label: str) -> dict[str, Any]:
    """The dense model's ``checkpoint``, ``epochs``, ``seed``, ``train`` and ``optimizer``: the
    ``dense`` section's, with ``dense.<model>`` (checkpoint, epochs, seed) set over them where not null."""
    section = dict(settings.get("dense") or {})
    own = section.get(label) or {}
    if not isinstance(own, Mapping) or set(own) - set(PER_MODEL_DENSE_KEYS):
        raise ConfigError(f"dense.{label} may set {', '.join(PER_MODEL_DENSE_KEYS)} for that model only")
    dense = {k: section.get(k) for k in DENSE_KEYS}
    dense.update({k: v for k, v in own.items() if v is not None})
    dense["seed"] = int(dense.get("seed") or 0)
    return dense


def _dense_folder(settings: Mapping[str, Any], model: ModelSource, data: YoloData, dense: Mapping[str, Any],
                  max_batches: int | None = None) -> str:
    """``<model>_<dataset>_<digest>``: the digest covers every setting the trained dense model depends on
    (and ``--max-batches``: a shortened check never stands in for a real dense model)."""
    keys = {"model": dict(settings.get("model") or {}), "model_source": Path(model.source).name, "data": data.identity,
            "dense": {k: dense[k] for k in ("epochs", "seed", "train", "optimizer")},
            **{k: settings.get(k) for k in ("train", "optimizer", "batch_size")}}
    if max_batches is not None:
        keys["max_batches"] = int(max_batches)
    return f"{model.label}_{dataset_name(data.yaml)}_{settings_digest(keys)}"


def _dense_key(settings: Mapping[str, Any], model: ModelSource, data: YoloData, max_batches: int | None = None) -> str:
    """What identifies the dense model of ``settings`` within one command (a checkpoint's or a trained one's)."""
    dense = dense_settings(settings, model.label)
    checkpoint = model.source if model.checkpoint else dense.get("checkpoint")
    if checkpoint:
        return settings_digest({"checkpoint": str(checkpoint), "data": data.identity, "eval": {k: settings.get(k) for k in ("train", "batch_size")},
                                "max_batches": max_batches})
    return _dense_folder(settings, model, data, dense, max_batches)


def dense_model(settings: Mapping[str, Any], model: ModelSource, data: YoloData, dense_dir: Path, device: Any = None,
                threads: int = 0, eval_dir: Path | None = None, log=print, max_batches: int | None = None) -> DenseWeights:
    """The dense model by the rules of :mod:`core.harness.dense`, in this order:

    1. ``dense.checkpoint`` (``--dense-checkpoint``, ``dense.<model>.checkpoint``) or a ``.pt``
       model names the weights; they are validated (into ``eval_dir``).
    2. ``dense_dir/<model>_<dataset>_<digest>/`` holds a finished dense training of the same
       settings: it is reused.
    3. ``dense.epochs > 0``: Ultralytics trains it there from the seed ``dense.seed`` (whatever the
       run's seed); a training stopped between epochs continues where it stopped.
    4. Otherwise a :class:`ConfigError` naming both ways to get a dense model.

    ``max_batches`` (``--max-batches``) ends every epoch and validation after that many batches.
    """
    from .trainer import DenseTrainer, StageSpec, resume_overrides

    dense = dense_settings(settings, model.label)
    checkpoint = model.source if model.checkpoint else dense.get("checkpoint")
    if checkpoint:
        weights = Path(str(checkpoint)).expanduser()
        if not weights.is_file():
            raise DataError(_missing_checkpoint(weights, model.label))
        eval_dir = Path(eval_dir or Path(dense_dir) / f"{model.label}_checkpoint").resolve()
        metrics = evaluate_checkpoint(weights, settings, data.yaml, eval_dir, device, threads, max_batches)
        return DenseWeights(weights, metrics, {"source": str(weights), "checkpoint": str(weights)})
    save_dir = (Path(dense_dir) / _dense_folder(settings, model, data, dense, max_batches)).resolve()
    weights, stage = save_dir / "weights" / "last.pt", _read_stage(save_dir)
    if weights.is_file() and stage and stage["metrics"].get("final"):
        return DenseWeights(weights, stage["metrics"]["final"], {"source": f"{save_dir} (cached)", "epochs": len(stage["history"])})
    epochs = int(dense.get("epochs") or 0)
    if epochs < 1:
        raise ConfigError(f"no dense {model.label}: set dense.checkpoint (or --dense-checkpoint, dense.{model.label}.checkpoint) "
                          "to a trained Ultralytics .pt, or dense.epochs > 0 to train one here")
    extra = {**dict(dense.get("train") or {}), "model": model.source, "epochs": epochs, "project": str(save_dir.parent),
             "name": save_dir.name, **resume_overrides(save_dir, True, log)}
    DenseTrainer(overrides=train_args(settings, data.yaml, dense["seed"], extra, stage="dense", device=device),
                 spec=StageSpec("dense", threads=threads, max_batches=max_batches)).train()
    stage = _read_stage(save_dir)
    return DenseWeights(weights, stage["metrics"]["final"], {"source": f"trained here, cached in {save_dir}", "epochs": len(stage["history"]),
                                                             "history": stage["history"]})


# --- one run -----------------------------------------------------------------------------------
def run_yolo_pipeline(settings: Mapping[str, Any], recipe: PruningRecipe, model: ModelSource, out_dir: Path, data_yaml: Path,
                      dense: DenseWeights, device: Any = None, threads: int = 0, resume: bool = False,
                      max_batches: int | None = None) -> dict[str, Any]:
    """Prune the dense model as ``recipe`` says (method, sparsity, ``epochs``, ``update_every``,
    ``eval_every``, hyperparameters), hard-prune, retrain ``retrain_epochs``, and write
    ``out_dir/results.json``. With ``resume`` finished stages are reused and a stage stopped
    between epochs continues from its last epoch (Ultralytics' resume plus the exact state).
    ``max_batches`` (``--max-batches``) ends every epoch and validation after that many batches."""
    from ultralytics import YOLO

    from core import compression_stats

    from .trainer import MaskedRetrainTrainer, PruneTrainer, StageSpec, resume_overrides

    started = time.time()
    out_dir = Path(out_dir).resolve()

    prune_dir = out_dir / "prune"
    stage = _read_stage(prune_dir) if resume else None
    if not (stage and stage["metrics"].get("after_hard_pruning") and (prune_dir / "weights" / "pruned.pt").is_file()):
        extra = {"model": str(dense.weights), "epochs": recipe.epochs, "project": str(out_dir), "name": "prune",
                 **resume_overrides(prune_dir, resume)}
        spec = StageSpec("prune", recipe.method, recipe.sparsity.to_dict(), recipe.pruner_settings(), eval_every=recipe.eval_every,
                         threads=threads, max_batches=max_batches)
        PruneTrainer(overrides=train_args(settings, data_yaml, recipe.seed, extra, device=device), spec=spec).train()
        stage = _read_stage(prune_dir)
    prune_stage = stage
    final_weights = prune_dir / "weights" / "pruned.pt"
    metrics = {"dense": dense.metrics, "after_training": prune_stage["metrics"]["after_training"],
               "after_hard_pruning": prune_stage["metrics"]["after_hard_pruning"]}
    history = list(prune_stage["history"])

    snapshots = out_dir / SNAPSHOT_FILE
    if not snapshots.is_file():
        layers = pick_layers(prune_stage["pruned_layers"])
        save_snapshots(snapshots, {stage: weight_snapshot(YOLO(str(path)).model, layers) for stage, path in (
            ("dense", dense.weights), ("after_training", prune_dir / "weights" / "last.pt"), ("after_hard_pruning", final_weights))})

    if recipe.retrain_epochs > 0:
        retrain_dir = out_dir / "retrain"
        stage = _read_stage(retrain_dir) if resume else None
        if not (stage and stage["metrics"].get("after_retraining")):
            extra = {"model": str(final_weights), "epochs": recipe.retrain_epochs, "project": str(out_dir), "name": "retrain",
                     **resume_overrides(retrain_dir, resume)}
            spec = StageSpec("retrain", masks=str(prune_dir / "weights" / "masks.pt"), threads=threads, max_batches=max_batches)
            MaskedRetrainTrainer(overrides=train_args(settings, data_yaml, recipe.seed, extra, stage="retrain", device=device), spec=spec).train()
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
    dense_info = {"weights": str(dense.weights), **{k: v for k, v in dense.info.items() if k != "history"}}
    results = build_results(
        task=TASK, model=model.label, dataset=dataset_name(data_yaml), method=recipe.method,
        profile=str(settings.get("profile", "smoke")), seed=recipe.seed, target_compression=recipe.sparsity.target_rate, stats=stats,
        primary_metric=PRIMARY_METRIC, metrics=metrics, history=history, pruner_history=prune_stage.get("pruner_history", []),
        config={"recipe": recipe.as_dict(), "task": {**dict(settings), "data_yaml": str(data_yaml), "dense_model": dense_info,
                                                     "ultralytics_device": ultralytics_device(settings.get("device") if device is None else device)}},
        wall_time_s=time.time() - started,
        checkpoints={"pruned": str(prune_dir / "weights" / "pruned.pt"), "final": str(final_weights)},
        heatmaps=SNAPSHOT_FILE,  # relative to the results file
    )
    write_results(out_dir / "results.json", results)
    return results


# --- one experiment ----------------------------------------------------------------------------
def check_experiment(settings: Mapping[str, Any], runs: list[tuple[str, PruningRecipe]], out: Path, data_yaml: Path,
                     device: Any = None) -> ModelSource:
    """Everything an experiment can get wrong before it trains: its model, every stage's
    Ultralytics arguments, its dense settings. Returns the model."""
    from .spec import trainer_method

    for method in dict.fromkeys(recipe.method for _, recipe in runs):
        trainer_method(method)
    model = check_model(settings, out)
    for stage in ("dense", "prune", "retrain"):
        train_args(settings, data_yaml, 0, stage=stage, device=device)
    checkpoint = None if model.checkpoint else dense_settings(settings, model.label).get("checkpoint")
    if checkpoint and not Path(str(checkpoint)).expanduser().is_file():
        raise DataError(_missing_checkpoint(checkpoint, model.label))
    return model


def _missing_checkpoint(path: Any, label: str) -> str:
    return (f"dense checkpoint {path} not found; fix dense.checkpoint (--dense-checkpoint, dense.{label}.checkpoint) "
            "or set it to null to train the dense model here")


def run_experiment(settings: Mapping[str, Any], runs: list[tuple[str, PruningRecipe]], out: Path, data: YoloData,
                   dense_dir: Path, device: Any = None, threads: int = 0, resume: bool = False,
                   dense_models: dict[str, DenseWeights] | None = None, model: ModelSource | None = None,
                   started=None, max_batches: int | None = None) -> list[dict[str, Any]]:
    """Every run of an experiment, each in ``out/<name>`` (``runs``: core.harness.recipe.expand_runs).

    With ``resume``, finished runs (results.json of the same recipe) are read rather than rerun and
    unfinished ones continue where they stopped. ``dense_models`` shares dense models between
    experiments of one command; ``started`` is called once, before the first training; ``max_batches``
    (``--max-batches``) ends every epoch and validation of every stage after that many batches."""
    out = Path(out).resolve()  # Ultralytics puts a relative project under its own runs folder
    model = model or check_experiment(settings, runs, out, data.yaml, device)
    dense_models = {} if dense_models is None else dense_models
    results: list[dict[str, Any]] = []
    dense: DenseWeights | None = None
    for name, recipe in runs:
        out_dir = out / name
        finished = finished_run(out_dir, recipe) if resume else None
        if finished is not None:
            results.append(finished)
            continue
        if started is not None:
            started()
        if dense is None:
            key = _dense_key(settings, model, data, max_batches)
            if key not in dense_models:
                dense_models[key] = dense_model(settings, model, data, Path(dense_dir), device, threads, out / f"dense_{model.label}",
                                                max_batches=max_batches)
            dense = dense_models[key]
        began = provenance()
        results.append(run_yolo_pipeline(settings, recipe, model, out_dir, data.yaml, dense, device, threads, resume=resume,
                                         max_batches=max_batches))
        text = json.dumps({**began, "resumed": bool(resume)}, indent=2)
        atomic_write(out_dir / "provenance.json", lambda f: f.write(text + "\n"))
    return results
