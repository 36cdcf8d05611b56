"""Grids of pipeline runs (method x compression x seed), each in its own folder, resumable."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import CheckpointError
from ..pruning.ranks import is_main
from .pipeline import run_pipeline
from .recipe import PruningRecipe, same_recipe
from .results import atomic_write, provenance, read_results
from .task import PipelineTask

__all__ = ["run_grid", "check_sparsity", "finished_run"]


def check_sparsity(make_task: Callable[[PruningRecipe], PipelineTask], recipes: Iterable[tuple[str, PruningRecipe]]) -> None:
    """Resolve every recipe's sparsity config on its task's untrained architecture: an unknown
    layer name or an unreachable rate then ends a grid before any dense training or run, not
    after the runs before it."""
    for _, recipe in recipes:
        recipe.sparsity.resolve(make_task(recipe).new_model())


def finished_run(out_dir: Path, recipe: PruningRecipe) -> dict[str, Any] | None:
    """The results of the run finished in ``out_dir`` (None when it has none); a
    :class:`CheckpointError` when that run was made from another recipe, which ``--resume``
    must not pass off as this one."""
    path = Path(out_dir) / "results.json"
    if not path.is_file():
        return None
    finished = read_results(path)
    if not same_recipe(finished.get("config", {}).get("recipe"), recipe):
        raise CheckpointError(f"{out_dir} holds a finished run with another configuration; use a new --out or run without --resume")
    return finished


def run_grid(make_task: Callable[[PruningRecipe], PipelineTask], recipes: Iterable[tuple[str, PruningRecipe]], out_root: str | Path,
             resume: bool = False, progress: bool = True, dense_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Run each ``(name, recipe)`` into ``out_root/name``.

    With ``resume``, finished runs (results.json present) are read rather than rerun and
    unfinished ones continue from their checkpoint; without it every run starts afresh.
    Sparsity configs are checked first (:func:`check_sparsity`); ``dense_dir`` caches the dense
    model the runs share (core.harness.dense).
    """
    out_root = Path(out_root)
    recipes = list(recipes)
    check_sparsity(make_task, recipes)
    results = []
    for name, recipe in recipes:
        out_dir = out_root / name
        finished = finished_run(out_dir, recipe) if resume else None
        if finished is not None:
            results.append(finished)
            continue
        resume_this = resume and (out_dir / "checkpoint.pt").is_file()
        started = provenance()
        result = run_pipeline(make_task(recipe), recipe, out_dir, resume=resume_this, progress=progress, dense_dir=dense_dir)
        if result is not None and is_main():
            text = json.dumps({**started, "resumed": resume_this}, indent=2)
            atomic_write(out_dir / "provenance.json", lambda f: f.write(text + "\n"))
        results.append(result)
    return results
