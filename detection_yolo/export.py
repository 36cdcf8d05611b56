"""ONNX export of a pruned detection checkpoint (the optional ``onnx`` extra).

Ultralytics' exporter fuses each convolution with its batch norm (the weight is scaled per
output channel, so a pruned entry stays exactly zero) and writes the weights as ONNX
initializers. ``pip install 'slr-pruning[onnx]'`` installs the one package it needs; the ONNX
graph is written without onnxslim's simplification, which would need more packages.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from core.errors import ConfigError

__all__ = ["export_onnx", "onnx_weights"]

INSTALL = "pip install 'slr-pruning[onnx]' (or pip install 'onnx>=1.12,<2')"


def _require_onnx() -> None:
    if importlib.util.find_spec("onnx") is None:
        raise ConfigError(f"ONNX export needs the optional package 'onnx', which is not installed; {INSTALL}")


def export_onnx(weights: str | Path, imgsz: int = 640) -> Path:
    """Export the Ultralytics checkpoint ``weights`` to ONNX beside it; returns the ``.onnx`` path."""
    _require_onnx()
    from ultralytics import YOLO

    path = YOLO(str(weights)).export(format="onnx", imgsz=imgsz, simplify=False, dynamic=False, device="cpu")
    return Path(path)


def onnx_weights(path: str | Path) -> dict[str, np.ndarray]:
    """The floating-point initializers of an ONNX file (convolution kernels and biases), by name."""
    _require_onnx()
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    return {name: a for name, a in arrays.items() if np.issubdtype(a.dtype, np.floating)}
