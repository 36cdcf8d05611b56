"""YOLOv3 model definitions from Ultralytics' own YAML files (built from YAML, never downloaded)."""
from __future__ import annotations

from pathlib import Path

import yaml

from core.errors import ConfigError

from .ultralytics_env import ultralytics_root

__all__ = ["MODEL_NAMES", "model_yaml"]

# the paper's models, as named in Ultralytics' cfg/models/v3/ (anchor-free Detect head)
MODEL_NAMES = ("yolov3-tiny", "yolov3", "yolov3-spp")


def _packaged_yaml(name: str) -> Path:
    return ultralytics_root() / "cfg" / "models" / "v3" / f"{name}.yaml"


def model_yaml(name: str, out_dir: str | Path, width_multiple: float | None = None) -> Path:
    """Path of the model YAML for ``name``; with ``width_multiple`` a narrower copy is written
    to ``out_dir`` (the smoke profile's way to keep YOLOv3-SPP small on a CPU)."""
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model '{name}'; use one of {', '.join(MODEL_NAMES)}")
    source = _packaged_yaml(name)
    if width_multiple is None or float(width_multiple) == 1.0:
        return source
    if not 0 < float(width_multiple) <= 1:
        raise ConfigError(f"width_multiple = {width_multiple} must lie in (0, 1]")
    spec = yaml.safe_load(source.read_text())
    spec["width_multiple"] = float(width_multiple)
    out = Path(out_dir) / f"{name}-w{float(width_multiple):g}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out
