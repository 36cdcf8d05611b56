"""The device policy of every entry point: ``--device`` (or the config's ``device``), resolved once.

``auto`` (or nothing) is the first CUDA GPU when one is visible, else the CPU. A CUDA device asked
for on a machine without one is a clear error, not a silent CPU run. The pipeline moves the model
to the resolved device and each task's batches follow it.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(asked: "str | torch.device | None" = None) -> torch.device:
    """The device for ``asked``: ``None``, ``""`` or ``"auto"`` pick CUDA when available, else the CPU."""
    if isinstance(asked, torch.device):
        return asked
    text = str(asked or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"device '{asked}' is not a torch device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{asked}' was asked for but no CUDA GPU is visible; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device '{asked}' does not exist ({torch.cuda.device_count()} GPU(s) visible); use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return device
