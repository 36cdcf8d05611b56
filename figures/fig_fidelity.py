"""The fidelity study's figures: Figure 1's curve and Figure 2's ‖W − Z‖ per update, for the
paper's methods and the authors' variants, from results files only.

    python -m figures.fig_fidelity [--runs docs/fidelity/results] [--out docs/fidelity]

Runs pool as in ``make claims`` (experiments that differ only in method, rate and seed); each
method's main group is the one holding its 8.71x runs, and the curve adds that group's other rates.
"""
from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from core.errors import DataError, exit_on_user_error

from .claims import index_runs, interval, violation_series
from .common import collect_results, metric, save_figure

__all__ = ["main_groups", "figure1_fidelity", "figure2_fidelity", "main"]

METHODS = ("slr", "admm", "slr_authors", "admm_authors")
STYLE = {"slr": ("tab:blue", "-"), "admm": ("tab:orange", "-"), "slr_authors": ("tab:blue", "--"), "admm_authors": ("tab:orange", "--")}
PAPER_FIGURE1 = {"slr": 88.12, "admm": 80.25}  # the paper's Table 1 at 8.71x (its Figure 1 at that rate)


def main_groups(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[float, list[Mapping[str, Any]]]]:
    """``method -> rate -> runs`` of the group that holds the method's 8.71x runs (ablations left out)."""
    index = index_runs(results)
    home = {m: e for (e, m, rate, _) in sorted(index) if m in METHODS and abs(rate - 8.71) < 1e-6 and not e.startswith("abl_")}
    out: dict[str, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    for (experiment, method, rate, _), run in sorted(index.items()):
        if home.get(method) == experiment:
            out[method][rate].append(run)
    return out


def _finish(fig, ax, xlabel: str, ylabel: str, title: str):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure1_fidelity(results: Sequence[Mapping[str, Any]]):
    import matplotlib.pyplot as plt

    groups = main_groups(results)
    if not groups:
        raise DataError("no slr/admm/slr_authors/admm_authors runs at 8.71x; run `make fidelity` first")
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        if method not in groups:
            continue
        rates = sorted(groups[method])
        cis = [interval([metric(r, "after_hard_pruning") for r in groups[method][rate]]) for rate in rates]
        color, line = STYLE[method]
        ax.errorbar(rates, [c.mean for c in cis], yerr=[0 if c.n < 2 else c.high - c.mean for c in cis], color=color, linestyle=line,
                    marker="o", capsize=3, label=f"{method} (ours, n={min(c.n for c in cis)})")
        if method in PAPER_FIGURE1:
            ax.plot([8.71], [PAPER_FIGURE1[method]], marker="x", markersize=9, color=color, linestyle="none", label=f"{method} (paper, Table 1)")
    return _finish(fig, ax, "compression rate (pruned layers)", "top-1 after hard-pruning (%)",
                   "Figure 1, fidelity study: accuracy after hard-pruning (mean, 95% CI)")


def figure2_fidelity(results: Sequence[Mapping[str, Any]]):
    import matplotlib.pyplot as plt

    groups = main_groups(results)
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        runs = groups.get(method, {}).get(8.71, [])
        series = [violation_series(r) for r in runs]
        series = [s for s in series if s]
        if not series:
            continue
        length = min(len(s) for s in series)
        mean = [statistics.fmean(s[i] for s in series) for i in range(length)]
        color, line = STYLE[method]
        ax.plot(range(1, length + 1), mean, color=color, linestyle=line, label=f"{method} (mean of {len(series)})")
    ax.set_yscale("log")
    return _finish(fig, ax, "update (epoch)", "‖W − Z‖ (pruned layers)", "Figure 2, fidelity study: constraint violation at 8.71x")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    from core.harness.cli import ArgumentParser

    parser = ArgumentParser(prog="python -m figures.fig_fidelity", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("docs/fidelity/results"))
    parser.add_argument("--out", type=Path, default=Path("docs/fidelity"))
    args = parser.parse_args(argv)
    results = collect_results(args.runs)
    for name, draw in (("figure1_fidelity", figure1_fidelity), ("figure2_fidelity", figure2_fidelity)):
        for path in save_figure(draw(results), args.out, name):
            print(path)


if __name__ == "__main__":
    main()
