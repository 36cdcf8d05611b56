"""Grids of pipeline runs (method x compression x seed), each in its own folder, resumable."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable

from .pipeline import PruningRecipe, Task, run_pipeline
from .errors import CheckpointError
from .distributed import is_main
from .results import atomic_write, jsonable, provenance, read_results

__all__ = ["run_name", "run_grid", "same_recipe", "check_sparsity"]


def same_recipe(results: dict[str, Any], recipe: PruningRecipe) -> bool:
    """Whether a results file was written by ``recipe`` (compared in its JSON form)."""
    return results.get("config", {}).get("recipe") == jsonable(recipe.as_dict())


def run_name(recipe: PruningRecipe, label: str | None = None) -> str:
    """``<method>_<label>_seed<seed>``; label defaults to the target rate (``8.71x``)."""
    if label is None:
        rate = recipe.sparsity.target_rate
        label = f"{rate:g}x" if rate is not None else "ratios"
    return f"{recipe.method}_{label}_seed{recipe.seed}"


def check_sparsity(make_task: Callable[[PruningRecipe], Task], recipes: Iterable[tuple[str, PruningRecipe]]) -> None:
    """Resolve every recipe's sparsity config on its task's untrained architecture, for tasks
    that offer ``new_model()``: an unknown layer name or an unreachable rate then ends a grid
    before any dense training or run, not after the runs before it."""
    for _, recipe in recipes:
        new_model = getattr(make_task(recipe), "new_model", None)
        if new_model is not None:
            recipe.sparsity.resolve(new_model())


def run_grid(make_task: Callable[[PruningRecipe], Task], recipes: Iterable[tuple[str, PruningRecipe]], out_root: str | Path,
             resume: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Run each ``(name, recipe)`` into ``out_root/name``.

    With ``resume``, finished runs (results.json present) are read rather than rerun and
    unfinished ones continue from their checkpoint; without it every run starts afresh.
    Sparsity configs are checked first (:func:`check_sparsity`).
    """
    out_root = Path(out_root)
    recipes = list(recipes)
    check_sparsity(make_task, recipes)
    results = []
    for name, recipe in recipes:
        out_dir = out_root / name
        if resume and (out_dir / "results.json").is_file():
            finished = read_results(out_dir / "results.json")
            if not same_recipe(finished, recipe):
                raise CheckpointError(f"{out_dir} holds a finished run with another configuration; use a new --out or run without --resume")
            results.append(finished)
            continue
        resume_this = resume and (out_dir / "checkpoint.pt").is_file()
        started = provenance()
        result = run_pipeline(make_task(recipe), recipe, out_dir, resume=resume_this, progress=progress)
        if result is not None and is_main():
            text = json.dumps({**started, "resumed": resume_this}, indent=2)
            atomic_write(out_dir / "provenance.json", lambda f: f.write(text + "\n"))
        results.append(result)
    return results
