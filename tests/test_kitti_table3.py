"""figures/table3.py: our numbers from results files beside the paper's Table 3."""
from __future__ import annotations

from core.harness.results import REQUIRED_KEYS, write_results
from figures.table3 import main, official_rows, table3_rows


def fake_result(method: str, rate: float, hard: float, retrained: float) -> dict:
    def stage(value):
        return {f"3d_iou05_R11_mAP_{d}": value + i for i, d in enumerate(("easy", "moderate", "hard"))}

    result = {k: None for k in REQUIRED_KEYS}
    result.update(schema_version=1, task="pointpillars_kitti", model="pointpillars", dataset="synthetic-kitti", method=method,
                  profile="smoke", seed=0, target_compression=rate, primary_metric="3d_iou05_R11_mAP_moderate",
                  metrics={"dense": stage(50.0), "after_training": stage(hard), "after_hard_pruning": stage(hard),
                           "after_retraining": stage(retrained)}, history=[], per_layer=[], config={}, wall_time_s=1.0,
                  achieved_compression={"pruned_layers": rate, "whole_model": rate}, code_version="test")
    return result


def test_table3_rows_put_ours_beside_the_paper(tmp_path, capsys):
    results = [fake_result("slr", 4.874, 40.0, 45.0), fake_result("admm", 4.874, 30.0, 35.0), fake_result("slr", 9.449, 20.0, 25.0)]
    rows = table3_rows(results, "3d_iou05_R11")
    assert rows[0] == ["Easy", "50.0 (80.7)", "4.874x", "30.0 (77.0)", "35.0 (81.5)", "40.0 (77.8)", "45.0 (82.2)",
                       "4.874× / 4.874×", "4.874× / 4.874×"]  # achieved rate (ADMM / SLR), pruned layers then whole model
    assert rows[1] == ["", "", "9.449x", "- (58.6)", "- (70.9)", "20.0 (68.0)", "25.0 (79.9)", "- / 9.449×", "- / 9.449×"]
    assert rows[5][2:7] == ["9.449x", "- (30.8)", "- (35.6)", "22.0 (46.1)", "27.0 (51.4)"]  # hard = value + 2
    for i, r in enumerate(results):
        write_results(tmp_path / "runs" / f"run{i}" / "results.json", r)
    main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "fig")])
    text = (tmp_path / "fig" / "table3.md").read_text()
    assert "| Moderate | 51.0 (78.5) | 4.874x | 31.0 (73.8) | 36.0 (77.1) | 41.0 (74.5) | 46.0 (78.4) |" in text
    assert (tmp_path / "fig" / "figure3.png").is_file() and (tmp_path / "fig" / "table3_official.tex").is_file()


def test_official_table_reports_aos_beside_the_2d_ap():
    result = fake_result("slr", 4.874, 40.0, 45.0)
    result["metrics"]["after_retraining"].update({"bbox_official_R11_mAP_moderate": 60.0, "bbox_official_R40_mAP_moderate": 61.0,
                                                  "aos_official_R11_mAP_moderate": 55.0, "aos_official_R40_mAP_moderate": 56.5})
    row = official_rows([result])[0]
    assert row[:2] == ["SLR", "4.874x"] and row[6:] == ["60.0", "61.0", "55.0", "56.5"]  # 2D R11, R40, AOS R11, R40
    assert official_rows([fake_result("admm", 4.874, 1.0, 2.0)])[0][8:] == ["-", "-"]  # results files without AOS
