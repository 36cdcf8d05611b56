"""Ultralytics' data exceptions as the project's one-line :class:`core.errors.DataError`.

Ultralytics reports a data problem as a multi-line ``RuntimeError`` (``Dataset '...' error ...``
from the trainer's data check, ``No valid images found in ...`` from the dataset) or a
``FileNotFoundError``, with emoji and a help address. :func:`data_error` keeps the first line's
facts and adds the fix.
"""
from __future__ import annotations

import re

from core.errors import DataError

__all__ = ["data_error", "is_data_error"]

_MARKERS = ("Dataset '", "No valid images found", "images not found", "No images found")
_NOISE = re.compile(r"[^\x20-\x7e]+")  # emoji and other decorations Ultralytics adds


def is_data_error(err: BaseException) -> bool:
    """Whether ``err`` is one of Ultralytics' data exceptions."""
    return isinstance(err, (RuntimeError, FileNotFoundError)) and any(m in str(err) for m in _MARKERS)


def _first_line(text: str) -> str:
    line = next((ln for ln in str(text).splitlines() if ln.strip()), "")
    return " ".join(_NOISE.sub(" ", line).split()).rstrip(" .")


def data_error(err: BaseException) -> BaseException:
    """``err`` as a one-line DataError naming the fix, or ``err`` itself when it is not about data."""
    if isinstance(err, DataError) or not is_data_error(err):
        return err
    text = str(err)
    if "No valid images found" in text:
        cache = re.search(r"No valid images found in (\S+?)\.cache", text)
        where = cache.group(1) if cache else "a split"
        details = [ln.strip() for ln in text.splitlines()[1:] if ln.strip() and not ln.strip().startswith("http")]
        example = f" (e.g. {_first_line(details[0])})" if details and details[0] != "no error details" else ""
        return DataError(f"no usable image in {where}: every image or label was dropped{example}; "
                         "fix the labels (5 columns: class cx cy w h, normalised) or the images")
    message = _first_line(text)
    message = re.sub(r"^Dataset '[^']*' error\s*", "", message) or message
    return DataError(f"{message}; check the data YAML's path, train and val entries (nothing is downloaded)")
