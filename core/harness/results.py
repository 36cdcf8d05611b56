"""The results file every run writes, and atomic writes for it and for checkpoints."""
from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from ..errors import CheckpointError, DataError

__all__ = ["SCHEMA_VERSION", "REQUIRED_KEYS", "build_results", "jsonable", "format_summary", "atomic_write", "write_results", "read_results", "code_version", "atomic_torch_save", "RUN_SPECIFIC_KEYS", "reproducible_part", "provenance",
           "read_checkpoint", "load_state"]

SCHEMA_VERSION = 1

# key -> what it holds; every results file has all of them
REQUIRED_KEYS: dict[str, str] = {
    "schema_version": "integer, SCHEMA_VERSION",
    "task": "task folder, e.g. classification",
    "model": "architecture name",
    "dataset": "data set name",
    "method": "slr or admm (or a peer method)",
    "profile": "paper or smoke",
    "seed": "random seed",
    "target_compression": "requested rate over the pruned layers (null when ratios are given)",
    "achieved_compression": "{pruned_layers, whole_model} rates measured on the final weights",
    "primary_metric": "name of the metric tables report",
    "metrics": "{dense, after_training, after_hard_pruning, after_retraining}: metric name -> value",
    "history": "per-epoch rows for both training stages",
    "per_layer": "per-layer compression rows",
    "config": "the full run configuration",
    "wall_time_s": "seconds of the whole run",
    # optional: "stage_wall_time_s": {prune, retrain} seconds (the pipeline writes it; hard-pruning counts to prune)
    "code_version": "git commit of the code (with -dirty when modified)",
}


# keys that differ between two runs of the same code and settings (timings, the checkout's name)
RUN_SPECIFIC_KEYS = ("wall_time_s", "stage_wall_time_s", "code_version")


def reproducible_part(results: Mapping[str, Any]) -> dict[str, Any]:
    """``results`` without :data:`RUN_SPECIFIC_KEYS`: what a resumed run must reproduce exactly."""
    return {k: v for k, v in results.items() if k not in RUN_SPECIFIC_KEYS}


def build_results(*, task: str, model: str, dataset: str, method: str, profile: str, seed: int,
                  target_compression: float | None, stats: Any, primary_metric: str, metrics: Mapping[str, Any],
                  history: list, pruner_history: list, config: Mapping[str, Any], wall_time_s: float,
                  code: str | None = None, **extra: Any) -> dict[str, Any]:
    """A results record with every required key; ``stats`` is a :class:`core.stats.CompressionStats`
    of the final model, ``code`` the :func:`code_version` taken when the run started (default:
    now), ``extra`` adds task-specific keys."""
    return {
        "schema_version": SCHEMA_VERSION,
        "task": task,
        "model": model,
        "dataset": dataset,
        "method": method.lower(),
        "profile": profile,
        "seed": seed,
        "target_compression": target_compression,
        "achieved_compression": {"pruned_layers": stats.pruned_layers_rate, "whole_model": stats.whole_model_rate},
        "primary_metric": primary_metric,
        "metrics": dict(metrics),
        "history": list(history),
        "pruner_history": list(pruner_history),
        "per_layer": stats.per_layer,
        "config": dict(config),
        "wall_time_s": wall_time_s,
        "code_version": code if code is not None else code_version(),
        **extra,
    }


def format_summary(results: list[Mapping[str, Any]]) -> str:
    """One line per run: target rate, method, and the primary metric after each stage."""
    lines = [f"{'rate':>7} {'method':<6} {'dense':>7} {'trained':>8} {'hard-pruned':>12} {'retrained':>10} {'achieved':>9}"]
    for r in results:
        key = r["primary_metric"]
        m = {stage: r["metrics"][stage][key] for stage in ("dense", "after_training", "after_hard_pruning", "after_retraining")}
        rate = r["target_compression"]
        lines.append(f"{(f'{rate:.2f}x' if rate else '-'):>7} {r['method']:<6} {m['dense']:>7.2f} {m['after_training']:>8.2f} "
                     f"{m['after_hard_pruning']:>12.2f} {m['after_retraining']:>10.2f} {r['achieved_compression']['pruned_layers']:>8.2f}x")
    return "\n".join(lines)


def atomic_write(path: str | Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Write through ``write(file)`` to a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f), mode="wb")


def _first_line(err: BaseException, keys: tuple[str, ...] = ()) -> str:
    """The line of ``err``'s message that says what is wrong (the first one mentioning ``keys``), shortened."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    line = next((line for line in lines if any(k in line for k in keys)), lines[0])
    line = line.split(". ")[0].rstrip(".")  # the first sentence
    return line if len(line) <= 160 else line[:157] + "..."


def read_checkpoint(path: str | Path, what: str, fix: str, weights_only: bool = False) -> Any:
    """``torch.load`` of a checkpoint on the CPU; a missing, truncated or foreign file is a
    :class:`CheckpointError` naming the file and ``fix``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for unreadable files
        raise CheckpointError(f"{what} {path} cannot be read, it is truncated or not a PyTorch file "
                              f"({type(err).__name__}: {_first_line(err)}); {fix}") from None


def load_state(target: Any, state: Any, path: str | Path, fix: str) -> None:
    """``target.load_state_dict(state)`` (a module, optimizer or scheduler); a state saved from
    another model is a :class:`CheckpointError` naming ``path``, the first mismatch and ``fix``."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as err:
        problem = _first_line(err, ("size mismatch", "Missing key", "Unexpected key", "parameter group"))
        raise CheckpointError(f"{path} does not fit this {type(target).__name__} ({problem}); {fix}") from None


def jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return jsonable(value.tolist())
    return value


def write_results(path: str | Path, results: Mapping[str, Any]) -> None:
    """Check the schema and write ``results`` as JSON, atomically."""
    missing = [k for k in REQUIRED_KEYS if k not in results]
    if missing:
        raise ValueError(f"results lack required keys {missing}")
    text = json.dumps(jsonable(results), indent=2, sort_keys=False)
    atomic_write(path, lambda f: f.write(text + "\n"))


def read_results(path: str | Path) -> dict[str, Any]:
    """Load a results file, checking its schema version and keys."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read results file {path}: {err}; rerun the run that writes it") from None
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing or data.get("schema_version") != SCHEMA_VERSION:
        raise DataError(f"{path} is not a results file of schema {SCHEMA_VERSION} (missing {missing}); rerun the run that writes it")
    return data


def _invocation(argv: list[str]) -> list[str]:
    """``argv`` with a package's ``__main__.py`` written back as ``-m package``."""
    first = Path(argv[0]) if argv else None
    if first is not None and first.name == "__main__.py":
        return ["-m", first.parent.name, *argv[1:]]
    return list(argv)


def provenance() -> dict[str, Any]:
    """The command line, the code version and the machine of this process (``provenance.json``
    beside each results file)."""
    import os
    import platform
    import shlex
    import sys

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "command": shlex.join([Path(sys.executable).name, *_invocation(sys.argv)]) if sys.argv else "",
        "cwd": os.getcwd(),
        "code_version": code_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def code_version() -> str:
    """``git describe`` of the code's checkout, or ``unknown`` outside git."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=here, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
