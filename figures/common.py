"""What every table and figure module shares: reading results, the paper's numbers, writing
Markdown/LaTeX tables and PNG/PDF plots."""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from core.errors import DataError
from core.harness.results import read_results

__all__ = ["collect_results", "task_results", "runs_out_parser", "paper_numbers", "mean_std", "render_table", "write_table", "save_figure", "metric", "achieved_rate",
           "RATE_COLUMNS"]

PAPER_NUMBERS = Path(__file__).resolve().parent / "paper_numbers"


def collect_results(root: str | Path, **match: Any) -> list[dict[str, Any]]:
    """Every ``results.json`` under ``root`` whose top-level fields equal ``match``; each gets its
    file's path under ``_path``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no results under {root}; run the matching make target first")
    found = [{**read_results(p), "_path": str(p)} for p in sorted(root.rglob("results.json"))]
    return [r for r in found if all(r.get(k) == v for k, v in match.items())]


def task_results(root: str | Path, task: str, target: str) -> list[dict[str, Any]]:
    """The results files of ``task`` under ``root``; a one-line error naming ``make target`` when there is none."""
    results = collect_results(root, task=task) if Path(root).is_dir() else []
    if not results:
        raise DataError(f"no {task} results under {root}; run `make {target}` (python -m {task}) first, or pass --runs with its output folder")
    return results


def runs_out_parser(doc: str | None, runs_help: str = "folder with the runs' results files",
                    out_help: str = "folder for the tables and figures", runs: Path | None = None, out: Path | None = None):
    """An argument parser with the ``--runs`` and ``--out`` every table and figure module takes."""
    import argparse

    from core.harness.cli import ArgumentParser

    parser = ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=runs is None, default=runs, help=runs_help)
    parser.add_argument("--out", type=Path, required=out is None, default=out, help=out_help)
    return parser


def paper_numbers(table: str) -> Any:
    """The paper's own numbers for ``table`` (transcribed once from the paper, labelled as such)."""
    path = PAPER_NUMBERS / f"{table}.yaml"
    return yaml.safe_load(path.read_text())


def metric(result: dict[str, Any], stage: str) -> float:
    """The primary metric of ``result`` after ``stage`` (dense, after_training, ...)."""
    return float(result["metrics"][stage][result["primary_metric"]])


def mean_std(values: Sequence[float], digits: int = 2) -> str:
    """``mean`` or ``mean ± std`` over seeds; ``-`` for no value."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


RATE_COLUMNS = ("Achieved rate", "Whole-model rate")


def achieved_rate(runs: Sequence[dict[str, Any]], which: str = "pruned_layers", digits: int = 2) -> str:
    """The achieved compression rate of ``runs`` (``pruned_layers`` or ``whole_model``, as the results
    files measured it on the final weights), mean ± std over seeds with a ``×``; ``-`` for none."""
    values = [(r.get("achieved_compression") or {}).get(which) for r in runs]
    values = [float(v) for v in values if v is not None]
    return mean_std(values, digits) + "×" if values else "-"


def _escape_tex(text: str) -> str:
    return str(text).replace("\\", r"\textbackslash{}").replace("%", r"\%").replace("_", r"\_").replace("&", r"\&").replace("±", r"$\pm$").replace("×", r"$\times$")


def render_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "md", caption: str = "") -> str:
    """A table as GitHub Markdown (``md``) or a LaTeX tabular (``tex``)."""
    rows = [[str(c) for c in row] for row in rows]
    if fmt == "md":
        lines = ([f"**{caption}**", ""] if caption else [])
        lines += ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    if fmt == "tex":
        lines = [r"\begin{table}[t]", r"\centering"]
        if caption:
            lines.append(r"\caption{" + _escape_tex(caption) + "}")
        lines += [r"\begin{tabular}{" + "l" * len(columns) + "}", r"\toprule",
                  " & ".join(_escape_tex(c) for c in columns) + r" \\", r"\midrule"]
        lines += [" & ".join(_escape_tex(c) for c in row) + r" \\" for row in rows]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown table format {fmt}")


def write_table(out_dir: str | Path, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> Path:
    """Write ``name.md`` and ``name.tex`` under ``out_dir``; return the Markdown path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for fmt in ("md", "tex"):
        (out_dir / f"{name}.{fmt}").write_text(render_table(columns, rows, fmt, caption))
    return out_dir / f"{name}.md"


def save_figure(fig, out_dir: str | Path, name: str) -> list[Path]:
    """Save a matplotlib figure as PNG and PDF."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return paths
