"""Ultralytics without the network: a run-local config folder, a local font, fixed thread count.

Ultralytics reads ``YOLO_CONFIG_DIR``, ``YOLO_OFFLINE`` and ``OMP_NUM_THREADS`` once, when it is
first imported, so :func:`prepare_ultralytics` must run before anything imports it.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch

__all__ = ["prepare_ultralytics", "restore_threads", "ultralytics_root", "FONT_NAMES"]

# fonts Ultralytics' check_font() looks for in its config folder before it tries to download one
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def ultralytics_root() -> Path:
    """The installed Ultralytics package folder, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("ultralytics is not installed; pip install -r requirements.txt")
    return Path(spec.origin).parent


def _bundled_font() -> Path:
    """A TrueType font shipped with matplotlib (DejaVu Sans)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def prepare_ultralytics(config_dir: str | Path, threads: int | None = None, verbose: bool = True) -> Path:
    """Point Ultralytics at ``config_dir`` (created, with local fonts), switch it offline, and
    fix the CPU thread count to ``threads`` (default: the current torch setting). With
    ``verbose=False`` Ultralytics shows no progress bars and no info logs.

    Returns Ultralytics' settings folder (``config_dir/Ultralytics``). When Ultralytics is already
    imported, it keeps the folder of the first call (its fonts are put back if that folder was
    removed since); raises ``RuntimeError`` when it was imported without this function, since
    its settings could then reach the network.
    """
    config_dir = Path(config_dir).resolve()
    user_dir = config_dir / "Ultralytics"  # Ultralytics keeps its settings and fonts in this subfolder
    _copy_fonts(user_dir)
    threads = int(threads or torch.get_num_threads())
    if "ultralytics" in sys.modules:
        from ultralytics.utils import USER_CONFIG_DIR, ONLINE

        current = Path(USER_CONFIG_DIR)
        ours = os.environ.get("YOLO_OFFLINE") == "1" and Path(os.environ.get("YOLO_CONFIG_DIR", "")) in current.parents
        if ONLINE or not (ours or all((current / n).exists() for n in FONT_NAMES)):
            raise RuntimeError(
                "ultralytics was imported before prepare_ultralytics(); call it first so that it runs offline"
            )
        _copy_fonts(current)  # the folder an earlier call prepared may be gone (a refused run removes what it wrote)
        restore_threads(threads)
        return Path(USER_CONFIG_DIR)
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if not verbose:
        os.environ["YOLO_VERBOSE"] = "False"
    import ultralytics  # noqa: F401  (reads the environment now)
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync"):
        SETTINGS.update(sync=False)  # no usage events, even if a network appears
    restore_threads(threads)
    return user_dir


def _copy_fonts(user_dir: Path) -> None:
    """``user_dir`` (created) with the fonts Ultralytics looks for."""
    user_dir.mkdir(parents=True, exist_ok=True)
    font = _bundled_font()
    for name in FONT_NAMES:
        target = user_dir / name
        if not target.exists():
            shutil.copyfile(font, target)


def restore_threads(threads: int) -> None:
    """Undo Ultralytics' CPU thread setting (its device selection sets its own count)."""
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
