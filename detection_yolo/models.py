"""Ultralytics detection models by name, YAML or checkpoint (built from YAML, never downloaded).

A model is named as Ultralytics names it: a packaged YAML with or without its scale letter
(``yolov3-tiny``, ``yolov3-spp``, ``yolov8n``, ``yolo11s.yaml``), the path of a model YAML, or
the path of a trained ``.pt`` checkpoint (which is then the dense model). Only detection
models (a ``Detect`` head) are accepted; segmentation, pose, OBB, classification, world and
RT-DETR models are refused with one line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.errors import ConfigError

from .ultralytics_env import ultralytics_root

__all__ = ["MODEL_NAMES", "ModelSource", "resolve_model", "model_yaml"]

# the paper's models, as named in Ultralytics' cfg/models/v3 (anchor-free Detect head)
MODEL_NAMES = ("yolov3-tiny", "yolov3", "yolov3-spp")
DETECT_HEADS = ("Detect", "v10Detect")
_SCALE = re.compile(r"(\d+)([nslmx])(.+)?$")  # Ultralytics' rule: yolov8n -> yolov8 at scale n


@dataclass(frozen=True)
class ModelSource:
    """Where Ultralytics builds a model from: ``source`` is what ``YOLO(source)`` and the trainer's
    ``model=`` take; ``label`` names the model in run folders and results."""

    label: str
    source: str
    checkpoint: bool = False


def _packaged(stem: str) -> Path | None:
    """Ultralytics' packaged model YAML ``<stem>.yaml``, or the one its scale-free name gives."""
    models = ultralytics_root() / "cfg" / "models"
    for candidate in dict.fromkeys((stem, _SCALE.sub(r"\1\3", stem))):
        found = sorted(models.rglob(f"{candidate}.yaml"))
        if found:
            return found[0]
    return None


def _check_detection(path: Path, name: str) -> dict:
    try:
        spec = yaml.safe_load(path.read_text())
        head = spec["head"][-1][2]
    except Exception:
        raise ConfigError(f"model YAML {path} is not an Ultralytics model YAML (backbone, head); fix it or name a packaged model") from None
    if head not in DETECT_HEADS:
        raise ConfigError(f"model '{name}' ends in a {head} head; this task prunes detection models (a Detect head), "
                          "e.g. yolov3-tiny, yolov8n, yolo11n")
    return spec


def resolve_model(name: str | Path, out_dir: str | Path, width_multiple: float | None = None) -> ModelSource:
    """The model ``name`` (see the module docstring); with ``width_multiple`` a narrower copy of a
    YAML without scales is written to ``out_dir`` (the smoke profile's way to keep YOLOv3-SPP small)."""
    text = str(name)
    if text.endswith(".pt"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"model checkpoint {path} not found; give a trained Ultralytics .pt or a model YAML/name")
        if width_multiple not in (None, 1, 1.0):
            raise ConfigError(f"width_multiple applies to a model YAML, not to the checkpoint {path}")
        return ModelSource(path.stem, str(path.resolve()), checkpoint=True)
    path = Path(text).expanduser()
    stem = path.stem if path.suffix in (".yaml", ".yml") else path.name
    if path.suffix in (".yaml", ".yml") and path.is_file():
        source, scaled = path.resolve(), False
    else:
        packaged = _packaged(stem)
        if packaged is None:
            raise ConfigError(f"unknown model '{text}': neither a file nor one of Ultralytics' model YAMLs; "
                              f"use e.g. {', '.join(MODEL_NAMES)}, yolov8n, yolo11n or a path to a .yaml or .pt")
        source, scaled = packaged, packaged.stem != stem
    spec = _check_detection(source, text)
    if width_multiple is None or float(width_multiple) == 1.0:
        # a scaled name goes to Ultralytics as a name: it reads the scale letter from it
        return ModelSource(stem, f"{stem}.yaml" if scaled else str(source))
    if not 0 < float(width_multiple) <= 1:
        raise ConfigError(f"width_multiple = {width_multiple} must lie in (0, 1]")
    if spec.get("scales"):
        raise ConfigError(f"model '{text}' sets its width by its scale letter (n, s, m, l, x); drop width_multiple")
    spec["width_multiple"] = float(width_multiple)
    out = Path(out_dir) / f"{stem}-w{float(width_multiple):g}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return ModelSource(stem, str(out))


def model_yaml(name: str, out_dir: str | Path, width_multiple: float | None = None) -> Path:
    """Path of the model YAML for ``name`` (a YAML-built model; see :func:`resolve_model`)."""
    model = resolve_model(name, out_dir, width_multiple)
    if model.checkpoint:
        raise ConfigError(f"'{name}' is a checkpoint, not a model YAML")
    return Path(model.source) if Path(model.source).is_absolute() else _packaged(model.label)
