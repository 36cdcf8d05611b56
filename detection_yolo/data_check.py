"""An Ultralytics data YAML checked as Ultralytics will read it, before any training.

* :func:`resolve_data_yaml` finds the data set root by Ultralytics' rule (``path:`` as given when
  it exists from the working directory or is absolute, else under Ultralytics' datasets folder;
  no ``path:`` means the YAML's folder) and writes a resolved copy with absolute paths and no
  ``download`` entry, which every stage then reads.
* :func:`check_splits` lists each split's images as Ultralytics does and verifies every
  image-label pair with Ultralytics' own ``verify_image_label`` (the image opens, each label line
  has 5 columns, coordinates are normalised, class ids are below ``nc``). It reports, one line
  per split, how many files Ultralytics will drop and why (also without progress output), and a
  split left with no usable image is a :class:`DataError`. Results are cached by the files' names,
  sizes and modification times, so a large data set is verified once.
"""
from __future__ import annotations

import glob
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from core.harness.config import load_yaml, settings_digest
from core.errors import DataError

__all__ = ["SplitReport", "resolve_data_yaml", "check_splits", "dataset_name", "SPLITS"]

SPLITS = ("train", "val")
RESOLVED_SUFFIX = ".resolved"
LABEL_FIX = "fix the labels (one 'class cx cy w h' line per box, normalised to [0, 1]) or remove the files"


@dataclass
class SplitReport:
    """One split: how many images Ultralytics lists, and the (file, reason) pairs it will drop."""

    split: str
    images: int
    dropped: list[tuple[str, str]] = field(default_factory=list)

    def line(self, shown: int = 3) -> str:
        text = f"{self.split}: {self.images} images, {len(self.dropped)} dropped"
        if self.dropped:
            text += " (" + "; ".join(f"{Path(f).name}: {why}" for f, why in self.dropped[:shown])
            text += f"; and {len(self.dropped) - shown} more)" if len(self.dropped) > shown else ")"
        return text


def dataset_name(data_yaml: str | Path) -> str:
    """The data set's name from its YAML: the file's stem, or its folder's name for ``data.yaml``."""
    path = Path(data_yaml)
    stem = path.stem.removesuffix(RESOLVED_SUFFIX)
    return path.parent.name if stem == "data" else stem


def _root(spec: dict[str, Any], path: Path, datasets_dir: Path | None) -> Path:
    given = spec.get("path")
    root = Path(given) if given else path.parent
    if not root.exists() and not root.is_absolute() and datasets_dir is not None:
        root = Path(datasets_dir) / root
    if not root.exists():
        where = f"from the working directory {Path.cwd()}" + (f", then under Ultralytics' datasets folder {datasets_dir}" if datasets_dir else "")
        raise DataError(f"{path}: data set root 'path: {given}' not found; Ultralytics resolves a relative path {where}, "
                        "not from the YAML's folder: make it absolute")
    return root.resolve()


def _split_path(root: Path, entry: str) -> Path:
    target = (root / entry).resolve()
    if not target.exists() and str(entry).startswith("../"):  # Ultralytics' fallback
        target = (root / str(entry)[3:]).resolve()
    return target


def resolve_data_yaml(path: str | Path, out_dir: str | Path, datasets_dir: str | Path | None = None) -> Path:
    """Check the data YAML at ``path`` and write its resolved copy to ``out_dir``; returns the copy."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data YAML {path} not found; pass --data-root holding it or --set data.yaml=PATH (an Ultralytics data YAML)")
    spec = load_yaml(path, what="Ultralytics data YAML") or {}
    if not isinstance(spec, dict):
        raise DataError(f"{path} is not an Ultralytics data YAML (a mapping with path, train, val and names); fix the file")
    if "names" not in spec:
        raise DataError(f"{path} has no 'names'; list the class names in the data YAML")
    root = _root(spec, path, Path(datasets_dir) if datasets_dir else None)
    resolved = {**{k: v for k, v in spec.items() if k != "download"}, "path": str(root)}
    for split in (*SPLITS, "test"):
        entries = spec.get(split)
        if not entries:
            if split in SPLITS:
                raise DataError(f"{path} has no '{split}' entry; an Ultralytics data YAML lists train and val image folders or files")
            continue
        targets = [_split_path(root, e) for e in (entries if isinstance(entries, list) else [entries])]
        missing = next((t for t in targets if not t.exists()), None)
        if missing is not None:
            raise DataError(f"{path}: {split} data {missing} does not exist; download the data there first (this project never downloads it)")
        resolved[split] = [str(t) for t in targets] if isinstance(entries, list) else str(targets[0])
    out = Path(out_dir) / f"{path.stem}{RESOLVED_SUFFIX}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(resolved, sort_keys=False))
    return out


def _image_files(entries: list[str]) -> list[str]:
    """The split's images, listed as Ultralytics' dataset lists them (folders, list files, single files)."""
    from ultralytics.data.utils import IMG_FORMATS

    files: list[str] = []
    for entry in entries:
        p = Path(entry)
        if p.is_dir():
            files += glob.glob(str(Path(glob.escape(str(p))) / "**" / "*.*"), recursive=True)
        elif p.suffix == ".txt":
            lines = p.read_text(encoding="utf-8-sig").strip().splitlines()
            files += [x.replace("./", str(p.parent) + os.sep, 1) if x.startswith("./") else x for x in lines]
        else:
            files.append(str(p))
    return sorted(f for f in files if f.rpartition(".")[-1].lower() in IMG_FORMATS)


def _verify(images: list[str], num_classes: int) -> list[tuple[str, str]]:
    from ultralytics.data.utils import img2label_paths, verify_image_label

    jobs = [(im, lb, "", False, num_classes, 0, 0, False) for im, lb in zip(images, img2label_paths(images))]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(verify_image_label, jobs))
    dropped = []
    for (im, *_), result in zip(jobs, results):
        if result[8]:  # corrupt: Ultralytics leaves the pair out
            reason = str(result[9]).split("ignoring corrupt image/label:", 1)[-1]
            dropped.append((im, " ".join(reason.split())))
    return dropped


def _fingerprint(images: list[str], num_classes: int) -> str:
    from ultralytics.data.utils import img2label_paths

    stats = []
    for f in [*images, *img2label_paths(images)]:
        try:
            s = os.stat(f)
            stats.append((f, s.st_size, s.st_mtime_ns))
        except OSError:
            stats.append((f, None, None))
    return settings_digest({"files": stats, "nc": num_classes})


def check_splits(data_yaml: str | Path, cache_dir: str | Path | None = None, log: Callable[[str], None] | None = print) -> list[SplitReport]:
    """Verify the train and val splits of a data YAML with an absolute ``path`` (as this package
    writes them; see the module docstring), logging one line per split."""
    spec = load_yaml(data_yaml, what="Ultralytics data YAML")
    names = spec["names"]
    num_classes = int(spec.get("nc") or len(names))
    reports = []
    root = Path(spec.get("path") or Path(data_yaml).parent)  # absolute in the YAMLs this package writes
    for split in SPLITS:
        entries = [str(_split_path(root, e)) for e in (spec[split] if isinstance(spec[split], list) else [spec[split]])]
        images = _image_files(entries)
        if not images:
            raise DataError(f"{data_yaml}: {split} has no images ({', '.join(entries)}); Ultralytics reads "
                            "jpg, png, bmp, ... files in those folders or list files")
        cache = Path(cache_dir) / f"check-{split}-{_fingerprint(images, num_classes)}.json" if cache_dir else None
        if cache is not None and cache.is_file():
            dropped = [tuple(d) for d in json.loads(cache.read_text())]
        else:
            dropped = _verify(images, num_classes)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps(dropped))
        report = SplitReport(split, len(images), dropped)
        if len(dropped) == len(images):
            raise DataError(f"{data_yaml}: every {split} image is dropped ({len(images)} of {len(images)}; "
                            f"e.g. {Path(dropped[0][0]).name}: {dropped[0][1]}); {LABEL_FIX}")
        if log is not None:
            log(f"data: {report.line()}")
        reports.append(report)
    return reports
