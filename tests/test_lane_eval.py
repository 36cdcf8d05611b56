"""The official TuSimple metric (lane_tusimple.lane_eval) on hand-made lanes with hand-computed values."""
import json
import math

import pytest

from core.errors import DataError
from lane_tusimple.lane_eval import bench_image, evaluate_json_lines, lane_angle, lane_threshold, line_accuracy

H = [10, 20, 30, 40]  # four label rows
VERTICAL = [100, 100, 100, 100]  # angle 0: threshold 20


def shifted(lane, d):
    return [x + d if x >= 0 else x for x in lane]


def test_vertical_lane_threshold_is_20_and_strict():
    assert lane_threshold(VERTICAL, H) == pytest.approx(20.0)
    assert line_accuracy(shifted(VERTICAL, 19.9), VERTICAL, 20.0) == 1.0
    assert line_accuracy(shifted(VERTICAL, 20.0), VERTICAL, 20.0) == 0.0  # |dx| < thresh, strictly


def test_threshold_widens_with_the_lane_angle():
    diagonal = [10, 20, 30, 40]  # x = y: 45 degrees, threshold 20 * sqrt(2) = 28.28
    assert lane_angle(diagonal, H) == pytest.approx(math.pi / 4)
    assert lane_threshold(diagonal, H) == pytest.approx(28.2843, abs=1e-4)
    assert bench_image([shifted(diagonal, 28.0)], [diagonal], H) == (1.0, 0.0, 0.0)
    # 28.5 is past the threshold: no point agrees, the lane is missed and the prediction is a false positive
    assert bench_image([shifted(diagonal, 28.5)], [diagonal], H) == (0.0, 1.0, 1.0)


def test_angle_is_a_least_squares_fit_over_valid_points_only():
    # x = [0, 10, 30] at y = [10, 20, 30]: slope = sum(dy dx) / sum(dy^2) = 300 / 200 = 1.5; the -2 point is ignored
    lane = [0, 10, 30, -2]
    assert math.tan(lane_angle(lane, H)) == pytest.approx(1.5)
    assert lane_threshold(lane, H) == pytest.approx(20 * math.sqrt(1 + 1.5 ** 2))
    assert lane_angle([-2, 50, -2, -2], H) == 0.0  # one point: angle 0


def test_missing_points_count_as_minus_100():
    gt = [-2, 100, 100, 100]
    assert line_accuracy([-2, 100, 100, 100], gt, 20.0) == 1.0  # both missing: agree
    assert line_accuracy([50, 100, 100, 100], gt, 20.0) == 0.75  # |50 - (-100)| = 150
    assert line_accuracy([-2, -2, 100, 100], gt, 20.0) == 0.75  # row 2: -100 vs 100
    assert line_accuracy([-2, -2, -2, 100], gt, 20.0) == 0.5


def test_point_accuracy_below_085_is_a_miss():
    gt = VERTICAL + [100] * 16  # 20 rows, vertical
    hs = list(range(10, 210, 10))
    pred_17 = [100] * 17 + [200] * 3  # 17/20 = 0.85: matched
    pred_16 = [100] * 16 + [200] * 4  # 16/20 = 0.80: missed
    assert bench_image([pred_17], [gt], hs) == (pytest.approx(0.85), 0.0, 0.0)
    assert bench_image([pred_16], [gt], hs) == (pytest.approx(0.80), 1.0, 1.0)


def test_false_positives_are_normalised_by_predictions_and_misses_by_gt():
    left, right = [100] * 4, [300] * 4
    # two GT lanes found, plus a spurious third prediction: acc 2/2, FP 1/3, FN 0
    assert bench_image([left, right, [500] * 4], [left, right], H) == (1.0, pytest.approx(1 / 3), 0.0)
    # only the left lane predicted: acc (1 + 0) / 2, FP 0, FN 1/2
    assert bench_image([left], [left, right], H) == (0.5, 0.0, 0.5)
    # nothing predicted: acc 0, FP 0 (no prediction), FN 2/2
    assert bench_image([], [left, right], H) == (0.0, 0.0, 1.0)


def test_more_than_four_gt_lanes_drop_the_worst_lane_and_one_miss():
    gts = [[100 * (i + 1)] * 4 for i in range(5)]
    # four of five found: sum 4 - min 0 = 4, / 4 = 1; FN 1 - 1 = 0
    assert bench_image(gts[:4], gts, H) == (1.0, 0.0, 0.0)
    # three of five found: (3 - 0) / 4 = 0.75; FN (2 - 1) / 4 = 0.25
    assert bench_image(gts[:3], gts, H) == (0.75, 0.0, 0.25)


def test_too_many_predictions_or_too_slow_score_zero():
    gt = [VERTICAL]
    assert bench_image([VERTICAL] * 4, gt, H) == (0.0, 0.0, 1.0)  # 1 + 2 < 4
    assert bench_image([VERTICAL] * 3, gt, H) == (1.0, pytest.approx(2 / 3), 0.0)  # 1 + 2 = 3 is allowed
    assert bench_image([VERTICAL], gt, H, run_time_ms=201) == (0.0, 0.0, 1.0)
    assert bench_image([VERTICAL], gt, H, run_time_ms=200) == (1.0, 0.0, 0.0)


def test_no_gt_lane():
    assert bench_image([], [], H) == (0.0, 0.0, 0.0)
    assert bench_image([VERTICAL], [], H) == (0.0, 1.0, 0.0)


def test_lane_with_wrong_length_is_an_error():
    with pytest.raises(DataError):
        bench_image([[1, 2, 3]], [VERTICAL], H)


def test_file_scores_are_averaged_over_gt_images(tmp_path):
    left, right = [100] * 4, [300] * 4
    gt = [{"raw_file": "a.jpg", "lanes": [left, right], "h_samples": H},
          {"raw_file": "b.jpg", "lanes": [left, right], "h_samples": H}]
    pred = [{"raw_file": "b.jpg", "lanes": [left], "run_time": 10},   # (0.5, 0, 0.5)
            {"raw_file": "a.jpg", "lanes": [left, right, [500] * 4], "run_time": 10}]  # (1, 1/3, 0)
    gt_file, pred_file = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_file.write_text("\n".join(json.dumps(g) for g in gt) + "\n")
    pred_file.write_text("\n".join(json.dumps(p) for p in pred) + "\n")
    result = evaluate_json_lines(pred_file, gt_file)
    assert result.images == 2
    assert result.accuracy == pytest.approx(0.75)
    assert result.fp == pytest.approx(1 / 6)
    assert result.fn == pytest.approx(0.25)
    with pytest.raises(DataError):
        evaluate_json_lines(pred[:1], gt)


def test_matches_a_least_squares_reference():
    from sklearn.linear_model import LinearRegression
    import numpy as np

    xs = np.array([-2, 412.0, 398, 371, 352, 330, -2])
    ys = np.arange(160, 230, 10, dtype=float)
    valid = xs >= 0
    slope = LinearRegression().fit(ys[valid][:, None], xs[valid]).coef_[0]
    assert lane_angle(xs, ys) == pytest.approx(math.atan(slope))
