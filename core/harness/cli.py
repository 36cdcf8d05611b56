"""Command-line pieces every entry point (``python -m <task>``) shares."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from .config import PROFILES
from ..errors import USER_ERROR_EXIT_CODE, ConfigError, DataError

__all__ = ["ArgumentParser", "add_common_args", "resolve_data_root", "dataset_dir", "methods_from_arg", "set_threads"]


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors end like every other user error: one line
    ``error: ...`` naming the fix, exit code 2 (argparse's own prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        print(f"error: {message}; see {self.prog} --help", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT_CODE)


def add_common_args(parser: argparse.ArgumentParser, methods: Sequence[str] = ("slr", "admm")) -> argparse.ArgumentParser:
    """``--profile --data-root --method --seed --out --resume --set --threads --no-progress``.

    ``--method`` takes one of ``methods`` (a task that runs the peers passes
    :func:`core.method_names`) or ``both`` (the config's methods, by default SLR and ADMM).
    """
    parser.add_argument("--profile", choices=PROFILES, default=os.environ.get("PROFILE", "smoke"),
                        help="smoke: small and fast on CPU, no download; paper: the paper's settings on real data")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="root of the real data set (default: $DATA_ROOT); the smoke profile generates its own")
    parser.add_argument("--method", choices=(*methods, "both"), default="both")
    parser.add_argument("--seed", type=int, action="append", default=None, help="repeat for several seeds")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: runs/<profile>/<task>)")
    parser.add_argument("--resume", action="store_true", help="continue runs from their last checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set pruning.epochs=5 (a key the config lacks is an error, a new key inside an existing section is allowed)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: the config's threads, else PyTorch's default)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def set_threads(arg: int | None, configured: int | None) -> int | None:
    """Set torch's CPU threads to ``--threads``, else the config's ``threads``; ``None`` or 0 leaves
    PyTorch's default. Returns the number set (or None)."""
    threads = arg if arg is not None else configured
    if threads is None or (arg is None and int(threads) == 0):
        return None
    if int(threads) < 1:
        raise ConfigError(f"threads = {threads} must be >= 1 (or 0 in a config for PyTorch's default)")
    import torch

    torch.set_num_threads(int(threads))
    return int(threads)


def methods_from_arg(method: str) -> list[str]:
    return ["slr", "admm"] if method == "both" else [method]


def resolve_data_root(arg: Path | None, what: str, required: bool = True) -> Path | None:
    """``--data-root`` or ``$DATA_ROOT``; a missing folder is a :class:`DataError` naming the fix."""
    root = arg if arg is not None else (Path(os.environ["DATA_ROOT"]) if os.environ.get("DATA_ROOT") else None)
    if root is None:
        if required:
            raise DataError(f"no data root for {what}: pass --data-root PATH or set DATA_ROOT (the smoke profile needs neither)")
        return None
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist; pass --data-root pointing at the {what} folder")
    return root


def dataset_dir(root: Path, subdir: str) -> Path:
    """One data set's folder under the shared ``DATA_ROOT`` layout: ``root/<subdir>`` when it exists, else ``root`` itself.

    Every task reads its data set from its own subfolder (``kitti/``, ``tusimple/``, ``cifar10/``,
    ``imagenet/``, ``coco/``) of one data root; a root that is the data set's own folder works too.
    """
    return root / subdir if (root / subdir).is_dir() else root
