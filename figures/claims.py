"""The paper's quantitative claims, judged on results files: the paper's figure, ours with a 95 %
confidence interval over seeds, the number of seeds, and a verdict.

    python -m figures.claims [--runs docs/fidelity/results] [--out FILE.md]

The classification claims are judged here; YOLO's, KITTI's and TuSimple's in figures/task_claims.py.

Runs are grouped by their settings (experiments that differ only in method, rate and seed pool,
named after the one that holds the headline rate), method, target rate and seed; every comparison pairs an SLR run with the ADMM run of the same experiment, rate and seed
(``slr`` with ``admm``, ``slr_authors`` with ``admm_authors``). Verdicts: *holds* when the
interval of the paired difference lies above 0, *does not hold* when it lies below, and
*inconclusive* when it contains 0 (or fewer than 2 seeds pair up).
"""
from __future__ import annotations

import json
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from core.errors import exit_on_user_error

from .common import collect_results, metric, render_table

__all__ = ["Interval", "interval", "verdict", "Claim", "index_runs", "violation_series", "judge", "ablations", "claims_markdown", "main"]

PAIRS = (("slr", "admm"), ("slr_authors", "admm_authors"))
PAPER_GAP_871 = 88.12 - 80.25  # Table 1, ResNet-18 on CIFAR-10 after hard-pruning at 8.71x (the paper's)
HEADLINE_RATE = 8.71


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:+.2f} (n = {self.n})"
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def _t_quantile(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def interval(values: Sequence[float]) -> Interval:
    """Mean and two-sided 95 % t-interval of ``values`` (a paired difference per seed)."""
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = statistics.fmean(values)
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = _t_quantile(n - 1) * statistics.stdev(values) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def verdict(ci: Interval) -> str:
    """holds / does not hold / inconclusive for "the difference is positive"."""
    if ci.n < 2 or math.isnan(ci.low):
        return "inconclusive"
    if ci.low > 0:
        return "holds"
    if ci.high < 0:
        return "does not hold"
    return "inconclusive"


@dataclass(frozen=True)
class Claim:
    claim: str
    pair: str
    paper: str
    ours: Interval
    unit: str

    @property
    def verdict(self) -> str:
        return verdict(self.ours)


_PER_RUN_TASK_KEYS = ("experiment", "rates", "seeds", "methods", "table", "profile")


def _experiment(result: Mapping[str, Any]) -> str:
    extra = result.get("config", {}).get("recipe", {}).get("extra", {}) or {}
    return str(extra.get("experiment", Path(result.get("_path", "?")).parent.parent.name))


def _settings_key(result: Mapping[str, Any]) -> str:
    """Everything a run was configured with except its method, rate, seed and experiment name:
    experiments that differ only in those (a main grid and the extra rates of its curve) pool."""
    config = result.get("config", {})
    recipe = {k: v for k, v in config.get("recipe", {}).items() if k not in ("method", "seed", "extra", "profile")}
    recipe["sparsity"] = {k: v for k, v in (recipe.get("sparsity") or {}).items() if k != "target_rate"}
    task = {k: v for k, v in config.get("task", {}).items() if k not in _PER_RUN_TASK_KEYS}
    return json.dumps([recipe, task], sort_keys=True, default=str)


def index_runs(results: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, float, int], Mapping[str, Any]]:
    """``(experiment group, method, rate, seed) -> results``; a group is named after its experiment
    that holds the rate nearest the headline 8.71x (then: the most runs, the first name)."""
    results = list(results)
    names: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        names[_settings_key(r)][_experiment(r)].append(abs(float(r.get("target_compression") or 0.0) - HEADLINE_RATE))
    label = {key: min(found, key=lambda n: (min(found[n]), -len(found[n]), n)) for key, found in names.items()}
    out = {}
    for r in results:
        rate = r.get("target_compression")
        out[(label[_settings_key(r)], r["method"], round(float(rate), 3) if rate else 0.0, int(r["seed"]))] = r
    return out


def violation_series(result: Mapping[str, Any]) -> list[float]:
    return [float(h["violation"]) for h in result.get("pruner_history", []) if h.get("violation") is not None]


def _conditions(result: Mapping[str, Any]) -> list[bool]:
    return [bool(h["condition"]) for h in result.get("pruner_history", []) if h.get("condition") is not None]


def _paired(index, experiment: str, slr: str, admm: str, rate: float, value) -> list[float]:
    """``value(slr run) - value(admm run)`` for every seed that has both."""
    diffs = []
    for (e, m, r, seed), run in sorted(index.items(), key=lambda kv: kv[0][3]):
        if (e, m, r) == (experiment, slr, rate) and (e, admm, r, seed) in index:
            a, b = value(run), value(index[(e, admm, r, seed)])
            if a is not None and b is not None:
                diffs.append(a - b)
    return diffs


def judge(results: Iterable[Mapping[str, Any]]) -> list[Claim]:
    """Every claim of the classification runs, for every experiment and SLR/ADMM pair they hold
    (the other tasks' claims: figures/task_claims.py)."""
    index = index_runs(r for r in results if r.get("task", "classification") == "classification")
    claims: list[Claim] = []
    experiments = sorted({k[0] for k in index})
    for experiment in experiments:
        for slr, admm in PAIRS:
            rates = sorted({k[2] for k in index if k[0] == experiment and k[1] == slr and (experiment, admm, k[2], k[3]) in index})
            if not rates:
                continue
            pair = f"{experiment}: {slr} − {admm}"
            hard = lambda r: metric(r, "after_hard_pruning")  # noqa: E731
            headline = min(rates, key=lambda x: abs(x - HEADLINE_RATE))
            claims.append(Claim(f"SLR ≥ ADMM after hard-pruning at {headline:g}x", pair, f"{PAPER_GAP_871:+.2f} (Table 1, 8.71x)",
                                interval(_paired(index, experiment, slr, admm, headline, hard)), "top-1 points"))
            if len(rates) > 1:
                low, high = rates[0], rates[-1]
                gaps = {rate: dict(zip(_seeds(index, experiment, slr, admm, rate), _paired(index, experiment, slr, admm, rate, hard))) for rate in (low, high)}
                common = sorted(set(gaps[low]) & set(gaps[high]))
                claims.append(Claim(f"the gap grows with compression ({low:g}x → {high:g}x)", pair, "grows (Figure 1)",
                                    interval([gaps[high][s] - gaps[low][s] for s in common]), "top-1 points"))
            # ‖W − Z‖ falls faster: ADMM's last/first ratio over SLR's, in log10 (positive: SLR faster)
            def fall(run):
                v = violation_series(run)
                return None if len(v) < 2 or v[0] <= 0 or v[-1] <= 0 else math.log10(v[-1] / v[0])
            claims.append(Claim("SLR's ‖W − Z‖ falls faster (last/first update)", pair, "faster (Figure 2)",
                                interval([-d for d in _paired(index, experiment, slr, admm, headline, fall)]), "log10 ADMM/SLR"))
        for slr in {p[0] for p in PAIRS}:
            early_late = []
            for (e, m, _, _), run in sorted(index.items()):
                c = _conditions(run) if (e, m) == (experiment, slr) else []
                if len(c) >= 4:
                    half = len(c) // 2
                    early_late.append(100 * (sum(c[:half]) / half - sum(c[half:]) / (len(c) - half)))
            if early_late:
                claims.append(Claim("the surrogate condition holds more often early on (first half − second half)", f"{experiment}: {slr}",
                                    "more often early (Figure 5)", interval(early_late), "% of updates"))
    return claims


def _seeds(index, experiment: str, slr: str, admm: str, rate: float) -> list[int]:
    return [k[3] for k in sorted(index, key=lambda k: k[3]) if k[:3] == (experiment, slr, rate) and (experiment, admm, rate, k[3]) in index]


def _runs_table(results: Sequence[Mapping[str, Any]]) -> str:
    groups: dict[tuple[str, str, float], list[Mapping[str, Any]]] = defaultdict(list)
    for (experiment, method, rate, _), r in index_runs(results).items():
        groups[(experiment, method, rate)].append(r)
    rows = []
    for (experiment, method, rate), runs in sorted(groups.items()):
        stats = [interval([metric(r, stage) for r in runs]) for stage in ("dense", "after_training", "after_hard_pruning", "after_retraining")]
        whole = statistics.fmean(r["achieved_compression"]["whole_model"] for r in runs)
        layers = statistics.fmean(r["achieved_compression"]["pruned_layers"] for r in runs)
        rows.append([experiment, method, f"{rate:g}x", f"{layers:.2f}x / {whole:.2f}x", len(runs),
                     *(f"{s.mean:.2f}" + ("" if s.n < 2 else f" ± {s.high - s.mean:.2f}") for s in stats)])
    return render_table(["experiment", "method", "target", "achieved (pruned layers / whole model)", "seeds",
                         "dense", "after training", "after hard-pruning", "after retraining"], rows)


def ablations(results: Iterable[Mapping[str, Any]], baseline: str = "authors", prefix: str = "abl_") -> list[tuple[str, str, Interval]]:
    """``(ablation, method, paired difference after hard-pruning)`` against the ``baseline`` group's
    run of the same method (its ``*_authors`` form for a paper method), rate and seed."""
    index = index_runs(results)
    rows = []
    for group, method in sorted({k[:2] for k in index if k[0].startswith(prefix)}):
        reference = method if any(k[:2] == (baseline, method) for k in index) else f"{method}_authors"
        diffs = [metric(run, "after_hard_pruning") - metric(index[(baseline, reference, rate, seed)], "after_hard_pruning")
                 for (g, m, rate, seed), run in sorted(index.items(), key=lambda kv: kv[0][3])
                 if (g, m) == (group, method) and (baseline, reference, rate, seed) in index]
        if diffs:
            rows.append((group, f"{method} − {baseline}/{reference}", interval(diffs)))
    return rows


def claims_markdown(results: Sequence[Mapping[str, Any]], source: str) -> str:
    claims = judge(results)
    lines = [f"# The paper's claims on `{source}`", "",
             "Ours: the mean paired difference over seeds with its 95 % t-interval (SLR run minus the ADMM run "
             "of the same experiment, rate and seed). The paper's column is the paper's own figure.", ""]
    if claims:
        lines.append(render_table(["claim", "runs", "paper", "ours (95 % CI)", "unit", "n", "verdict"],
                                  [[c.claim, c.pair, c.paper, str(c.ours), c.unit, c.ours.n, f"**{c.verdict}**"] for c in claims]))
    else:
        lines.append("No SLR/ADMM pair of classification runs to compare.")
    from .task_claims import task_claims  # imports this module

    per_task = task_claims(results)
    if per_task:
        lines += ["", "## Per-task claims (YOLO, KITTI, TuSimple)", "",
                  render_table(["task", "claim", "paper", "ours (95 % CI)", "unit", "n", "verdict"],
                               [[c.task, c.claim, c.paper, str(c.ours), c.unit, c.ours.n, f"**{c.verdict}**"] for c in per_task])]
    ablation_rows = ablations(results)
    if ablation_rows:
        lines += ["", "## Ablations: one factor changed, against the `authors` runs of the same seed (after hard-pruning)", "",
                  render_table(["ablation", "difference", "mean [95 % CI]", "n"], [[a, d, str(ci), ci.n] for a, d, ci in ablation_rows])]
    classification = [r for r in results if r.get("task", "classification") == "classification"]
    if classification:
        lines += ["", "## Runs (mean ± 95 % CI half-width, primary metric)", "", _runs_table(classification), ""]
    return "\n".join(lines)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    import argparse

    from core.harness.cli import ArgumentParser

    parser = ArgumentParser(prog="python -m figures.claims", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("docs/fidelity/results"), help="folder searched for results.json files")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)
    results = collect_results(args.runs)
    text = claims_markdown(results, str(args.runs))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
