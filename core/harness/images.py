"""Image files of the task folders' data sets, read with one clear error for a file that is not an image."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = ["open_rgb"]


def open_rgb(path: str | Path, fix: str) -> Any:
    """The image at ``path`` as an RGB ``PIL.Image``; a missing, truncated or non-image file is a
    :class:`DataError` naming the file and ``fix``."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image {path} does not exist; {fix}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except Exception as err:  # PIL raises OSError and others; an Image.open patched by Ultralytics raises its own
        reason = " ".join(str(err).split()) if isinstance(err, OSError) else "not an image file PIL can read"
        reason = reason.replace(f" '{path}'", "").replace(str(path), "it")  # the line names the file once
        raise DataError(f"cannot decode image {path} ({reason}); {fix}") from None
