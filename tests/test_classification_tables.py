"""Tables 1, 5, 6, 7 and the classification figures from results files written by the test."""
import json
import statistics

import pytest

from core.errors import DataError
from core.harness.results import REQUIRED_KEYS, SCHEMA_VERSION, write_results
from figures import fig_classification, table1, table5, table6, table7


def _result(experiment, method, rate, seed, stages, *, rho=0.1, s0=1e-4, M=200, r=0.1, dataset="cifar10", metric="top1"):
    """A results file's content with the given accuracies (dense, trained, hard-pruned, retrained)."""
    dense, trained, hard, retrained = stages
    history = [{"stage": "prune", "epoch": e, "loss": 1.0 / (e + 1), "mixed_loss": 2.0 / (e + 1), "violation": 10.0 - e,
                "condition": None if e == 0 else bool(e % 2), "metrics": {metric: trained - 3 + e, "loss": 1.0}} for e in range(4)]
    history += [{"stage": "retrain", "epoch": e, "loss": 0.5 / (e + 1), "metrics": {metric: retrained - 1 + e, "loss": 0.4}} for e in range(2)]
    data = {
        "schema_version": SCHEMA_VERSION, "task": "classification", "model": "resnet18", "dataset": dataset,
        "method": method, "profile": "smoke", "seed": seed, "target_compression": rate,
        "achieved_compression": {"pruned_layers": rate, "whole_model": rate * 0.9}, "primary_metric": metric,
        "metrics": {"dense": {metric: dense}, "after_training": {metric: trained}, "after_hard_pruning": {metric: hard},
                    "after_retraining": {metric: retrained}},
        "history": history, "per_layer": [],
        "config": {"recipe": {"rho": rho, "s0": s0, "M": M, "r": r, "epochs": 4, "retrain_epochs": 2},
                   "task": {"experiment": experiment, "table": "t"}},
        "wall_time_s": 1.0, "code_version": "test",
    }
    assert set(REQUIRED_KEYS) <= set(data)
    return data


@pytest.fixture
def table1_runs(tmp_path):
    root = tmp_path / "table1"
    values = {("slr", 0): (90.0, 80.0, 70.0, 85.0), ("slr", 1): (90.0, 82.0, 74.0, 87.0),
              ("admm", 0): (90.0, 60.0, 50.0, 80.0), ("admm", 1): (90.0, 62.0, 52.0, 81.0)}
    for (method, seed), stages in values.items():
        write_results(root / "r18_cifar" / f"{method}_8.71x_seed{seed}" / "results.json", _result("r18_cifar", method, 8.71, seed, stages))
        write_results(root / "r18_imagenet" / f"{method}_6.5x_seed{seed}" / "results.json",
                      _result("r18_imagenet", method, 6.5, seed, stages, dataset="imagenet", metric="top5"))
    return root


def test_table1_rows_are_means_over_seeds_beside_the_paper(table1_runs, tmp_path):
    path = table1.run_comparison_table(["--runs", str(table1_runs), "--out", str(tmp_path / "out")], "table1", "Table 1.")
    text = path.read_text()
    hard = f"{statistics.mean([70.0, 74.0]):.2f} ± {statistics.stdev([70.0, 74.0]):.2f}"
    row = next(line for line in text.splitlines() if "| CIFAR-10 | ResNet-18 | 8.71× | SLR |" in line)
    assert hard in row and "| 88.12 |" in row and "| 93.33 |" in row  # ours, and the paper's hard-pruned / dense
    admm = next(line for line in text.splitlines() if "| ImageNet | ResNet-18 | 6.5× | ADMM |" in line)
    assert "top5" in admm and "| 80.69 |" in admm and "51.00 ± 1.41" in admm
    assert (tmp_path / "out" / "table1.tex").read_text().count(r"\\") >= 5


def test_table7_and_figures_from_the_same_files(table1_runs, tmp_path):
    table7.main(["--runs", str(table1_runs), "--out", str(tmp_path / "out")])
    assert "| 80.25 |" in (tmp_path / "out" / "table7.md").read_text()  # paper's ADMM 8.71x after hard-pruning
    fig_classification.main(["figure1", "figure2", "figure8", "figure10", "--runs", str(table1_runs), "--out", str(tmp_path / "figs")])
    for name in ("figure1", "figure2", "figure8", "figure10"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "figs" / f"{name}.{ext}").stat().st_size > 1000


def test_figure1_points_are_the_hard_pruned_means(table1_runs):
    fig = fig_classification.figure1([json.loads(p.read_text()) for p in table1_runs.rglob("results.json")], "r18_cifar")
    data_lines = [list(line.get_ydata()) for line in fig.axes[0].get_lines()]
    assert [72.0] in data_lines and [51.0] in data_lines  # SLR mean of 70 and 74, ADMM mean of 50 and 52
    paper_labels = [line.get_label() for line in fig.axes[0].get_lines() if "paper" in line.get_label()]
    assert paper_labels == []  # no paper line unless the paper's numbers are passed


def test_ablation_tables(tmp_path):
    root = tmp_path / "table5"
    for rho in (0.1, 0.01):
        for s0 in (1e-2, 1e-4):
            write_results(root / f"slr_rho{rho}_s0{s0}" / "results.json",
                          _result("r18_cifar", "slr", 1.96, 0, (93.0, 90.0, 91.0 + rho, 92.0), rho=rho, s0=s0))
    table5.main(["--runs", str(root), "--out", str(tmp_path / "out")])
    rows = [line for line in (tmp_path / "out" / "table5.md").read_text().splitlines() if line.startswith("| 0.")]
    assert len(rows) == 4
    assert rows[0].startswith("| 0.1 | 0.01 |") and "| 91.10 |" in rows[0] and "| 87.67 |" in rows[0]  # ours, paper's
    fig_classification.main(["figure5", "figure6", "figure7", "--runs", str(root), "--out", str(tmp_path / "figs")])
    assert (tmp_path / "figs" / "figure6.png").is_file()
    root6 = tmp_path / "table6"
    for M, r in ((100, 0.1), (200, 0.05)):
        write_results(root6 / f"slr_M{M}_r{r}" / "results.json", _result("r18_cifar", "slr", 1.96, 0, (93.0, 90.0, 91.0, 92.0), M=M, r=r))
    table6.main(["--runs", str(root6), "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "table6.md").read_text()
    assert "| 100 | 0.1 |" in text and "| 91.40 |" in text and "| 200 | 0.05 |" in text and "| 92.22 |" in text


def test_missing_results_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="make table1"):
        table1.classification_results(tmp_path / "empty", "table1")
