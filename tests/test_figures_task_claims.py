"""The per-task claims of `make claims` on hand-made results files: YOLO's retraining peak, KITTI's
loss after retraining at 9.44x, TuSimple after hard-pruning."""
import pytest

from figures.claims import claims_markdown
from figures.task_claims import kitti_loss_claims, tusimple_claims, yolo_peak_claims


def _yolo(method, seed, curve):
    history = [{"stage": "retrain", "epoch": i, "metrics": {"mAP50": v}} for i, v in enumerate(curve)]
    return {"task": "detection_yolo", "method": method, "seed": seed, "target_compression": 2.0, "primary_metric": "mAP50", "history": history}


def test_yolo_peak_epoch_difference_and_verdict():
    results = [_yolo("slr", 0, [30, 33, 35, 34, 34]), _yolo("admm", 0, [20, 25, 28, 30, 31]),
               _yolo("slr", 1, [31, 36, 35, 35, 35]), _yolo("admm", 1, [22, 26, 29, 33, 32])]
    (claim,) = yolo_peak_claims(results)
    # peaks: slr 3 and 2, admm 5 and 4 -> differences 2 and 2
    assert claim.ours.mean == pytest.approx(2.0) and claim.ours.n == 2 and claim.verdict == "holds"
    tie = [_yolo("slr", 0, [30, 35, 35]), _yolo("admm", 0, [30, 35, 35])]  # a tie: the first epoch of the best value
    assert yolo_peak_claims(tie)[0].ours.mean == 0


def _kitti(method, seed, dense, retrained):
    metrics = {stage: {f"3d_iou05_R11_mAP_{d}": v for d, v in zip(("easy", "moderate", "hard"), values)}
               for stage, values in (("dense", dense), ("after_retraining", retrained))}
    return {"task": "pointpillars_kitti", "method": method, "seed": seed, "target_compression": 9.449, "metrics": metrics,
            "history": [{"stage": "retrain"}] * 3}


def test_kitti_loss_under_one_point():
    results = [_kitti("slr", 0, (80, 78, 60), (79.6, 70, 59.5)), _kitti("slr", 1, (80, 78, 60), (79.5, 71, 58.0)),
               _kitti("slr", 2, (80, 78, 60), (79.55, 70.5, 59.0)), _kitti("admm", 0, (80, 78, 60), (10, 10, 10))]
    claims = {c.claim.split("(")[-1].rstrip(")"): c for c in kitti_loss_claims(results)}
    # easy: losses 0.4, 0.5, 0.45 -> 0.45 +- 4.30 * 0.05 / sqrt(3) = [0.33, 0.57], all under 1 point
    assert claims["easy"].ours.mean == pytest.approx(0.45) and claims["easy"].ours.high == pytest.approx(0.45 + 4.3027 * 0.05 / 3 ** 0.5, rel=1e-3)
    assert claims["easy"].verdict == "holds"
    assert claims["moderate"].ours.mean == pytest.approx(7.5) and claims["moderate"].verdict == "does not hold"
    assert claims["hard"].verdict == "inconclusive"  # losses 0.5, 2.0, 1.0: the interval straddles 1
    assert claims["easy"].paper.startswith("0.8")  # 80.7 - 79.9, Table 3


def test_tusimple_paired_difference_with_the_papers_numbers():
    def run(method, seed, rate, value):
        return {"task": "lane_tusimple", "method": method, "seed": seed, "target_compression": rate, "primary_metric": "accuracy",
                "metrics": {"after_hard_pruning": {"accuracy": value}}}
    results = [run("slr", 0, 4.21, 90.0), run("admm", 0, 4.21, 88.0), run("slr", 1, 4.21, 91.0), run("admm", 1, 4.21, 88.5)]
    (claim,) = tusimple_claims(results)
    assert claim.ours.mean == pytest.approx(2.25) and claim.paper.startswith("+1.88")  # 92.54 - 90.66
    text = claims_markdown(results, "runs")
    assert "Per-task claims" in text and "No SLR/ADMM pair of classification runs" in text
