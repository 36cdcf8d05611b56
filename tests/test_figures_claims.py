"""make claims: verdicts and intervals on hand-made results files."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from figures.claims import ablations, interval, judge, main, verdict


def _result(experiment: str, method: str, rate: float, seed: int, hard: float, violations=(4.0, 1.0), conditions=None,
            settings: dict | None = None) -> dict:
    history = [{"violation": v, "condition": None if conditions is None else conditions[i]} for i, v in enumerate(violations)]
    return {
        "schema_version": 1, "task": "classification", "model": "resnet18", "dataset": "cifar10", "profile": "cpu",
        "history": [], "per_layer": {}, "wall_time_s": 1.0, "code_version": "test",
        "method": method, "seed": seed, "target_compression": rate, "primary_metric": "top1",
        "metrics": {s: {"top1": v} for s, v in (("dense", 90.0), ("after_training", 80.0), ("after_hard_pruning", hard), ("after_retraining", 85.0))},
        "achieved_compression": {"pruned_layers": rate, "whole_model": rate * 0.98},
        "pruner_history": history,
        "config": {"recipe": {"method": method, "seed": seed, "sparsity": {"target_rate": rate}, "s0": 1e-4, **(settings or {}),
                              "extra": {"experiment": experiment}},
                   "task": {"experiment": experiment, "rates": [rate], "seeds": [seed], "methods": [method]}},
    }


def test_interval_matches_a_t_table_and_the_verdicts() -> None:
    ci = interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.302653
    assert ci.mean == 2.0 and ci.n == 3
    assert ci.high - ci.mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert verdict(ci) == "inconclusive"  # 2 - 2.484 < 0
    assert verdict(interval([2.0, 2.1, 1.9, 2.05])) == "holds"
    assert verdict(interval([-2.0, -2.1, -1.9])) == "does not hold"
    assert verdict(interval([5.0])) == "inconclusive"  # one seed: no interval


def test_judge_pairs_runs_by_seed_and_pools_a_curve_with_its_main_grid() -> None:
    runs = []
    for seed, (s, a) in enumerate([(70.0, 60.0), (72.0, 61.0), (69.0, 60.5)]):  # gap at 8.71x: 10, 11, 8.5
        runs += [_result("paper", "slr", 8.71, seed, s, violations=(4.0, 2.0, 1.0, 0.4), conditions=[True, True, False, False]),
                 _result("paper", "admm", 8.71, seed, a, violations=(4.0, 2.0))]
        # the curve's extra rate, in another experiment with the same settings: gap 1, 0, 2
        runs += [_result("curve_paper", "slr", 1.96, seed, 85.0 + [1, 0, 2][seed]), _result("curve_paper", "admm", 1.96, seed, 85.0)]
    claims = {c.claim.split(" (")[0].split(" at ")[0]: c for c in judge(runs)}
    headline = claims["SLR ≥ ADMM after hard-pruning"]
    assert headline.pair == "paper: slr − admm" and headline.ours.n == 3
    assert headline.ours.mean == pytest.approx(29.5 / 3) and headline.verdict == "holds"
    grows = claims["the gap grows with compression"]
    assert grows.ours.mean == pytest.approx((9 + 11 + 6.5) / 3) and grows.verdict == "holds"
    falls = claims["SLR's ‖W − Z‖ falls faster"]
    assert falls.ours.mean == pytest.approx(math.log10(2.0 / 0.4)) and falls.verdict == "holds"  # the same every seed: a zero-width interval above 0
    condition = claims["the surrogate condition holds more often early on"]
    assert condition.ours.mean == pytest.approx(100.0) and condition.ours.n == 3  # 2/2 early, 0/2 late


def test_different_settings_are_not_paired_and_ablations_compare_to_the_authors_runs() -> None:
    runs = [_result("authors", "slr_authors", 8.71, s, 80.0 + s) for s in range(3)]
    runs += [_result("authors", "admm_authors", 8.71, s, 70.0) for s in range(3)]
    runs += [_result("abl_x", "slr_authors", 8.71, s, 75.0 + 2 * s, settings={"s0": 1e-2}) for s in range(3)]
    runs += [_result("abl_y", "slr", 8.71, s, 78.0, settings={"amplify": True}) for s in range(2)]
    pairs = {c.pair for c in judge(runs)}
    assert pairs == {"authors: slr_authors − admm_authors"}  # abl_x has no ADMM run with its settings
    rows = {a: (d, ci) for a, d, ci in ablations(runs)}
    assert rows["abl_x"][0] == "slr_authors − authors/slr_authors"
    assert rows["abl_x"][1].mean == pytest.approx(-4.0) and rows["abl_x"][1].n == 3  # -5, -4, -3
    assert rows["abl_y"][0] == "slr − authors/slr_authors" and rows["abl_y"][1].mean == pytest.approx(-2.5)  # -2, -3


def test_make_claims_reads_a_folder_and_writes_markdown(tmp_path: Path, capsys) -> None:
    for r in [_result("paper", "slr", 8.71, s, 60.0 + s) for s in range(2)] + [_result("paper", "admm", 8.71, s, 70.0) for s in range(2)]:
        folder = tmp_path / "runs" / r["method"] / f"seed{r['seed']}"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(r))
    main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "claims.md")])
    text = capsys.readouterr().out
    assert "| SLR ≥ ADMM after hard-pruning at 8.71x | paper: slr − admm | +7.87 (Table 1, 8.71x) |" in text
    assert "**does not hold**" in text  # -10 and -9: the interval lies below 0
    assert (tmp_path / "claims.md").read_text().strip() == text.strip()


def test_no_results_is_one_error_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--runs", str(tmp_path / "missing")])
    assert exit_info.value.code == 2


def test_fidelity_figures_use_each_methods_main_group(tmp_path: Path) -> None:
    from figures.fig_fidelity import figure1_fidelity, figure2_fidelity, main_groups

    runs = [_result("paper", m, 8.71, s, 70.0) for m in ("slr", "admm") for s in range(2)]
    runs += [_result("curve_paper", "slr", 1.96, s, 85.0) for s in range(2)]
    runs += [_result("abl_x", "slr", 8.71, 0, 10.0, settings={"amplify": True})]
    groups = main_groups(runs)
    assert sorted(groups) == ["admm", "slr"] and sorted(groups["slr"]) == [1.96, 8.71]
    assert [r["seed"] for r in groups["slr"][8.71]] == [0, 1]  # the ablation at 8.71x is not in the main group
    for draw in (figure1_fidelity, figure2_fidelity):
        fig = draw(runs)
        assert fig.axes[0].get_title().startswith("Figure")
