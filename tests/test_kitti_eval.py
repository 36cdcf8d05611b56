"""KITTI evaluation: rotated IoU, difficulty filters, ignore/DontCare handling, AP and AOS by hand and on real labels."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pointpillars_kitti.kitti_eval import average_precision, clean_frame, evaluate_kitti, sample_thresholds
from pointpillars_kitti.kitti_io import labels_to_arrays, read_labels
from pointpillars_kitti.rotated_iou import box3d_iou, image_box_iou, rotated_intersection, rotated_iou


def anno(names, bboxes, occluded=None, truncated=None, scores=None, locs=None, dims=None, ry=None):
    n = len(names)
    return {
        "name": np.array(names, dtype=object),
        "bbox": np.array(bboxes, dtype=float).reshape(n, 4),
        "occluded": np.array(occluded if occluded is not None else [0] * n),
        "truncated": np.array(truncated if truncated is not None else [0.0] * n, dtype=float),
        "alpha": np.zeros(n),
        "dimensions": np.array(dims if dims is not None else [[1.5, 1.6, 4.0]] * n, dtype=float).reshape(n, 3),
        "location": np.array(locs if locs is not None else [[10.0 * i, 1.5, 20.0] for i in range(n)], dtype=float).reshape(n, 3),
        "rotation_y": np.array(ry if ry is not None else [0.0] * n, dtype=float),
        "score": np.array(scores if scores is not None else [0.0] * n, dtype=float),
    }


# ---- rotated IoU ---------------------------------------------------------------------------

def test_rotated_iou_hand_cases():
    assert rotated_iou([[0, 0, 2, 2, 0]], [[1, 1, 2, 2, 0]])[0, 0] == pytest.approx(1 / 7)  # corner overlap 1 of 7
    octagon = 8 * (np.sqrt(2) - 1)  # a 2x2 square and itself turned 45 degrees overlap in a regular octagon
    assert rotated_iou([[0, 0, 2, 2, 0]], [[0, 0, 2, 2, np.pi / 4]])[0, 0] == pytest.approx(octagon / (8 - octagon))
    assert rotated_iou([[0, 0, 4, 2, 0]], [[0, 0, 4, 2, np.pi / 2]])[0, 0] == pytest.approx(4 / 12)  # a cross
    assert rotated_iou([[0, 0, 4, 2, 0]], [[0, 0, 4, 2, np.pi]])[0, 0] == pytest.approx(1.0)
    assert rotated_iou([[0, 0, 2, 2, 0]], [[5, 0, 2, 2, 0.3]])[0, 0] == 0.0
    assert rotated_iou([[0, 0, 2, 2, 0]], [[2, 0, 2, 2, 0]])[0, 0] == pytest.approx(0.0, abs=1e-12)  # touching edges
    # a small box inside a big one: the overlap is the small box whatever its angle
    assert rotated_intersection(np.array([[0, 0, 10, 10, 0.2]]), np.array([[0.5, 0.5, 1, 2, 1.0]]))[0, 0] == pytest.approx(2.0)
    assert rotated_iou([[0, 0, 2, 2, 0]], [[1, 0, 2, 2, 0]], criterion=0)[0, 0] == pytest.approx(0.5)


def test_rotated_intersection_matches_monte_carlo():
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(-1, 1, (6, 2)), rng.uniform(0.5, 3, (6, 2)), rng.uniform(-3, 3, 6)])
    b = np.column_stack([rng.uniform(-1, 1, (6, 2)), rng.uniform(0.5, 3, (6, 2)), rng.uniform(-3, 3, 6)])
    inter = rotated_intersection(a, b)
    pts = rng.uniform(-4, 4, (400_000, 2))

    def inside(r):
        d = pts - r[:2]
        c, s = np.cos(r[4]), np.sin(r[4])
        return (np.abs(d[:, 0] * c + d[:, 1] * s) <= r[2] / 2) & (np.abs(-d[:, 0] * s + d[:, 1] * c) <= r[3] / 2)

    mc = np.array([[64 * np.mean(inside(ra) & inside(rb)) for rb in b] for ra in a])
    np.testing.assert_allclose(inter, mc, atol=0.06)


def test_box3d_iou_hand_case():
    # two 4 x 2 x 2 boxes (l along camera x), the second shifted 2 m along x and 1 m up (camera y points down)
    iou = box3d_iou([[0, 0, 0]], [[2, 2, 4]], [0], [[2, 0, 0]], [[2, 2, 4]], [0])[0, 0]
    assert iou == pytest.approx(4 / 12)  # overlap 2 x 2 x 2 = 8 of 16 + 16 - 8
    iou = box3d_iou([[0, 0, 0]], [[2, 2, 4]], [0], [[2, -1, 0]], [[2, 2, 4]], [0])[0, 0]
    assert iou == pytest.approx(4 / 28)  # overlap 2 x 2 x 1 = 4 of 32 - 4
    assert box3d_iou([[0, 0, 0]], [[2, 2, 4]], [0], [[0, -2, 0]], [[2, 2, 4]], [0])[0, 0] == 0.0  # stacked, touching
    assert image_box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0] == pytest.approx(1 / 3)


# ---- difficulty filters and ignore rules -----------------------------------------------------

@pytest.mark.parametrize("height, occ, trunc, expected", [
    (50, 0, 0.0, [0, 0, 0]),      # easy and up
    (39, 0, 0.0, [1, 0, 0]),      # below 40 px: not easy
    (24, 0, 0.0, [1, 1, 1]),      # below 25 px: nothing
    (25, 0, 0.0, [1, 0, 0]),      # exactly 25 px: moderate (the C++ devkit's "height < min")
    (50, 1, 0.0, [1, 0, 0]),      # partly occluded: not easy
    (50, 2, 0.0, [1, 1, 0]),      # largely occluded: hard only
    (50, 3, 0.0, [1, 1, 1]),      # unknown occlusion: never
    (50, 0, 0.15, [0, 0, 0]),     # truncation 0.15 is still easy
    (50, 0, 0.2, [1, 0, 0]),      # above 0.15: not easy
    (50, 0, 0.4, [1, 1, 0]),      # above 0.3: hard only
    (50, 0, 0.6, [1, 1, 1]),      # above 0.5: never
])
def test_difficulty_filters_ignore_ground_truth(height, occ, trunc, expected):
    gt = anno(["Car"], [[100, 100, 200, 100 + height]], occluded=[occ], truncated=[trunc])
    dt = anno([], [])
    got = [int(clean_frame(gt, dt, "Car", d)[0][0]) for d in range(3)]
    assert got == expected


def test_neighbouring_classes_other_classes_dontcare_and_small_detections():
    gt = anno(["Van", "Person_sitting", "Cyclist", "DontCare", "Car"], [[0, 0, 50, 50], [0, 0, 50, 50], [0, 0, 50, 50], [300, 0, 400, 60], [0, 0, 50, 50]])
    dt = anno(["Car", "Car", "Pedestrian"], [[0, 0, 50, 50], [0, 0, 50, 30], [0, 0, 50, 50]])
    ig_gt, ig_dt, dc, n_valid = clean_frame(gt, dt, "Car", 1)
    assert list(ig_gt) == [1, -1, -1, -1, 0] and n_valid == 1  # Van is a neighbour of Car: ignored, not missed
    assert list(ig_dt) == [0, 0, -1]
    np.testing.assert_array_equal(dc, [[300, 0, 400, 60]])
    assert list(clean_frame(gt, dt, "Pedestrian", 1)[0]) == [-1, 1, -1, -1, -1]  # Person_sitting for Pedestrian
    assert list(clean_frame(gt, dt, "Car", 0)[1]) == [0, 1, -1]  # a 30 px detection is ignored on easy


def test_detection_of_an_ignored_object_is_neither_hit_nor_false_positive():
    gt = anno(["Car", "Car"], [[0, 0, 100, 100], [200, 0, 300, 100]], occluded=[0, 2])
    dt = anno(["Car", "Car"], [[0, 0, 100, 100], [200, 0, 300, 100]], scores=[0.5, 0.9])
    easy = average_precision([gt], [dt], "Car", 0, "bbox", 0.7, sampling="exact")
    assert easy["num_gt"] == 1 and easy["R40"] == pytest.approx(100.0)
    hard = average_precision([gt], [dt], "Car", 2, "bbox", 0.7, sampling="exact")
    assert hard["num_gt"] == 2 and hard["R40"] == pytest.approx(100.0)


def test_dontcare_region_discounts_a_false_positive():
    gt = anno(["Car", "DontCare"], [[0, 0, 100, 100], [500, 0, 700, 100]])
    dt = anno(["Car", "Car"], [[0, 0, 100, 100], [520, 10, 600, 90]], scores=[0.5, 0.9])
    with_dc = average_precision([gt], [dt], "Car", 1, "bbox", 0.7, sampling="exact")
    assert with_dc["R11"] == pytest.approx(100.0)
    gt_no_dc = anno(["Car"], [[0, 0, 100, 100]])
    without = average_precision([gt_no_dc], [dt], "Car", 1, "bbox", 0.7, sampling="exact")
    assert without["R11"] == pytest.approx(50.0) and without["R40"] == pytest.approx(50.0)  # P = 1/2 at R = 1


# ---- AP ------------------------------------------------------------------------------------

def test_average_precision_hand_computed():
    # 4 cars; detections by score: 0.9 hit, 0.8 false, 0.7 hit, 0.6 hit, one car missed
    # PR points (R, P): (1/4, 1), (2/4, 2/3), (3/4, 3/4); interpolated precision is 1 up to R = 1/4,
    # 3/4 up to R = 3/4, then 0.  R11: (3 x 1 + 5 x 0.75) / 11; R40: (10 x 1 + 20 x 0.75) / 40
    cars = [[100 * i, 0, 100 * i + 80, 80] for i in range(4)]
    gt = anno(["Car"] * 4, cars)
    dt = anno(["Car"] * 4, [cars[0], [900, 0, 980, 80], cars[1], cars[2]], scores=[0.9, 0.8, 0.7, 0.6])
    ap = average_precision([gt], [dt], "Car", 1, "bbox", 0.7, sampling="exact")
    assert ap["R11"] == pytest.approx((3 + 5 * 0.75) / 11 * 100)
    assert ap["R40"] == pytest.approx((10 + 20 * 0.75) / 40 * 100)


def test_aos_hand_computed_from_known_alpha_errors():
    # the AP case above with orientation errors: the 0.9 hit is exact (similarity 1), the 0.7 hit
    # is off by 90 degrees ((1 + cos(pi/2)) / 2 = 1/2), the 0.6 hit is reversed (0); the false
    # positive adds nothing but counts in the denominator.  Per threshold (R, similarity / (TP + FP)):
    # (1/4, 1/1), (2/4, 1.5/3), (3/4, 1.5/4); made monotone: 1 up to R = 1/4, 1/2 up to 2/4,
    # 3/8 up to 3/4.  R11: (3 x 1 + 3 x 0.5 + 2 x 0.375) / 11; R40: (10 + 10 x 0.5 + 10 x 0.375) / 40
    cars = [[100 * i, 0, 100 * i + 80, 80] for i in range(4)]
    gt = anno(["Car"] * 4, cars)
    gt["alpha"] = np.array([0.3, -1.0, 2.5, 0.0])
    dt = anno(["Car"] * 4, [cars[0], [900, 0, 980, 80], cars[1], cars[2]], scores=[0.9, 0.8, 0.7, 0.6])
    dt["alpha"] = np.array([0.3, 1.2, -1.0 + np.pi / 2, 2.5 - np.pi])
    ap = average_precision([gt], [dt], "Car", 1, "bbox", 0.7, sampling="exact", compute_aos=True)
    assert ap["R11"] == pytest.approx((3 + 5 * 0.75) / 11 * 100)  # AP is unchanged by orientation
    assert ap["aos_R11"] == pytest.approx((3 + 1.5 + 0.75) / 11 * 100)  # 47.73
    assert ap["aos_R40"] == pytest.approx((10 + 5 + 3.75) / 40 * 100)  # 46.875
    metrics = evaluate_kitti([gt], [dt], ["Car"], sampling="exact")  # reported beside the 2D AP of every set
    assert metrics["aos_official_R40_Car_moderate"] == pytest.approx(46.875)
    assert metrics["aos_iou05_R11_mAP_moderate"] == pytest.approx(ap["aos_R11"])
    assert metrics["bbox_official_R40_Car_moderate"] == pytest.approx(ap["R40"])


def test_aos_with_many_objects_and_unknown_alpha():
    # 80 cars all found with every alpha off by 60 degrees: AP 100, AOS (1 + cos(pi/3)) / 2 = 75, both samplings;
    # alphas that differ by a full turn are the same orientation
    boxes = [[100 * i, 0, 100 * i + 80, 80] for i in range(80)]
    gt = anno(["Car"] * 80, boxes)
    gt["alpha"] = np.linspace(-3, 3, 80)
    dt = anno(["Car"] * 80, boxes, scores=np.linspace(1, 0.2, 80))
    dt["alpha"] = gt["alpha"] + np.pi / 3 + 2 * np.pi * (np.arange(80) % 2)
    for sampling in ("devkit", "exact"):
        ap = average_precision([gt], [dt], "Car", 1, "bbox", 0.7, sampling=sampling, compute_aos=True)
        assert ap["R11"] == pytest.approx(100.0) and ap["R40"] == pytest.approx(100.0)
        assert ap["aos_R11"] == pytest.approx(75.0) and ap["aos_R40"] == pytest.approx(75.0)
    dt["alpha"] = np.full(80, -10.0)  # KITTI's "no orientation": the devkit skips AOS
    metrics = evaluate_kitti([gt], [dt], ["Car"], sampling="exact")
    assert np.isnan(metrics["aos_official_R40_Car_moderate"]) and metrics["bbox_official_R40_Car_moderate"] == pytest.approx(100.0)


def test_devkit_recall_sampling_needs_forty_objects():
    # the devkit reads the i-th sampled threshold as recall i/40: two perfect detections score 1/11 (R11)
    gt = anno(["Car"] * 2, [[0, 0, 80, 80], [100, 0, 180, 80]])
    dt = anno(["Car"] * 2, [[0, 0, 80, 80], [100, 0, 180, 80]], scores=[0.9, 0.8])
    ap = average_precision([gt], [dt], "Car", 1, "bbox", 0.7, sampling="devkit")
    assert ap["R11"] == pytest.approx(100 / 11) and ap["R40"] == pytest.approx(100 / 40)
    boxes = [[100 * i, 0, 100 * i + 80, 80] for i in range(80)]  # with 80 objects it reaches 100
    gt80 = anno(["Car"] * 80, boxes)
    dt80 = anno(["Car"] * 80, boxes, scores=np.linspace(1, 0.2, 80))
    for sampling in ("devkit", "exact"):
        ap = average_precision([gt80], [dt80], "Car", 1, "bbox", 0.7, sampling=sampling)
        assert ap["R11"] == pytest.approx(100.0) and ap["R40"] == pytest.approx(100.0)
    assert len(sample_thresholds(np.linspace(1, 0.2, 80), 80)) == 41


def test_ap_is_100_when_predictions_equal_the_real_labels():
    root = os.environ.get("SLR_DATA_ROOT")
    if not root or not (Path(root) / "kitti" / "training" / "label_2").is_dir():
        pytest.skip("SLR_DATA_ROOT is unset or holds no kitti/training/label_2")
    gts = [labels_to_arrays(read_labels(p)) for p in sorted((Path(root) / "kitti" / "training" / "label_2").glob("*.txt"))]
    dts = []
    for gt in gts:
        keep = np.array([n != "DontCare" for n in gt["name"]], dtype=bool)
        dt = {k: v[keep] for k, v in gt.items()}
        dt["score"] = np.linspace(1.0, 0.5, int(keep.sum()))
        dts.append(dt)
    metrics = evaluate_kitti(gts, dts, ["Car", "Pedestrian", "Cyclist"], sampling="exact")
    counted = {k: v for k, v in metrics.items() if not np.isnan(v)}
    assert len(counted) >= 72  # every metric x threshold set x interpolation x difficulty has mAP, plus per class
    assert all(v == pytest.approx(100.0) for v in counted.values())
    assert metrics["3d_iou05_R11_mAP_moderate"] == pytest.approx(100.0)
    assert metrics["bev_official_R40_Car_hard"] == pytest.approx(100.0)
    aos = {k: v for k, v in counted.items() if k.startswith("aos_")}  # AOS = AP = 100 with the labels' own alpha
    assert len(aos) >= 24 and metrics["aos_official_R40_mAP_moderate"] == pytest.approx(100.0)
    assert all(aos[k] == pytest.approx(counted["bbox" + k[3:]]) for k in aos)


# ---- DontCare per metric, and the vectorised engine against the literal devkit transcription ----

def test_dontcare_discounts_in_2d_only_because_its_3d_fields_are_dummies():
    # a Car found, and a false positive whose 2D box lies inside a DontCare region (KITTI's DontCare 3D fields: -1000, -1)
    gt = anno(["Car", "DontCare"], [[0, 0, 100, 100], [500, 0, 700, 100]],
              locs=[[0.0, 1.5, 20.0], [-1000, -1000, -1000]], dims=[[1.5, 1.6, 4.0], [-1, -1, -1]], ry=[0.0, -10])
    dt = anno(["Car", "Car"], [[0, 0, 100, 100], [520, 10, 600, 90]], scores=[0.5, 0.9],
              locs=[[0.0, 1.5, 20.0], [8.0, 1.5, 20.0]])
    metrics = evaluate_kitti([gt], [dt], ["Car"], sampling="exact")
    assert metrics["bbox_official_R40_Car_moderate"] == pytest.approx(100.0)  # held by the DontCare region
    assert metrics["bev_official_R40_Car_moderate"] == pytest.approx(50.0)  # not held: P = 1/2 at R = 1
    assert metrics["3d_official_R40_Car_moderate"] == pytest.approx(50.0)
    for metric, want in (("bbox", 100.0), ("bev", 50.0), ("3d", 50.0)):  # the literal transcription agrees
        assert average_precision([gt], [dt], "Car", 1, metric, 0.7, sampling="exact")["R40"] == pytest.approx(want)
    # a DontCare label with real 3D fields holds the detection in BEV and 3D too (the devkit's own overlap, over the detection)
    gt3 = {**gt, "location": np.array([[0.0, 1.5, 20.0], [8.0, 1.5, 20.0]]), "dimensions": np.array([[1.5, 1.6, 4.0], [3, 3, 6]])}
    assert evaluate_kitti([gt3], [dt], ["Car"], sampling="exact")["3d_official_R40_Car_moderate"] == pytest.approx(100.0)


def random_frames(rng: np.random.Generator, n_frames: int) -> tuple[list[dict], list[dict]]:
    """Labels of every kind (DontCare with KITTI's dummy 3D fields) and detections, many near the labels."""
    names = np.array(["Car", "Pedestrian", "Cyclist", "Van", "Person_sitting", "DontCare", "Truck"])

    def objects(n: int, kinds: np.ndarray) -> dict:
        x1, y1 = rng.uniform(0, 1000, n), rng.uniform(100, 250, n)
        a = {"name": kinds, "bbox": np.column_stack([x1, y1, x1 + rng.uniform(20, 200, n), y1 + rng.uniform(15, 120, n)]),
             "location": np.column_stack([rng.uniform(-6, 6, n), rng.uniform(1, 2, n), rng.uniform(5, 20, n)]),
             "dimensions": np.column_stack([rng.uniform(1.4, 1.8, n), rng.uniform(0.5, 2, n), rng.uniform(0.6, 4.5, n)]),
             "rotation_y": rng.uniform(-np.pi, np.pi, n), "alpha": rng.uniform(-np.pi, np.pi, n),
             "score": np.round(rng.uniform(0, 1, n), 2), "truncated": rng.choice([0, 0.1, 0.2, 0.4, 0.6], n),
             "occluded": rng.choice([0, 1, 2, 3], n)}
        dc = kinds == "DontCare"
        a["location"][dc], a["dimensions"][dc], a["rotation_y"][dc] = -1000, -1, -10
        return a

    gts, dts = [], []
    for _ in range(n_frames):
        n = int(rng.integers(0, 9))
        gt = objects(n, rng.choice(names, n, p=[0.35, 0.2, 0.15, 0.08, 0.05, 0.12, 0.05]))
        m = int(rng.integers(0, 8))
        dt = objects(m, rng.choice(names[:3], m))
        near = rng.choice(n, min(n, int(rng.integers(0, 6))), replace=False) if n else np.zeros(0, int)
        for key, scale in (("bbox", 1.5), ("location", 0.15), ("dimensions", 0.1), ("rotation_y", 0.15), ("alpha", 0.15)):
            dt[key] = np.concatenate([dt[key], gt[key][near] + rng.normal(0, scale, gt[key][near].shape)])
        kinds = gt["name"][near].copy()
        kinds[kinds == "DontCare"] = "Car"
        dt["name"] = np.concatenate([dt["name"], kinds])
        for key in ("score", "truncated", "occluded"):
            dt[key] = np.concatenate([dt[key], np.round(rng.uniform(0, 1, len(near)), 2) if key == "score" else np.zeros(len(near))])
        gts.append(gt)
        dts.append(dt)
    return gts, dts


@pytest.mark.parametrize("seed, sampling", [(0, "devkit"), (1, "devkit"), (2, "exact")])
def test_vectorised_engine_equals_the_literal_devkit_transcription(seed, sampling):
    from pointpillars_kitti.kitti_eval import OVERLAP_SETS, kitti_metrics
    gts, dts = random_frames(np.random.default_rng(seed), 25)
    fast = kitti_metrics(gts, dts, ["Car", "Pedestrian", "Cyclist"], ("official", "loose"), sampling)
    compared = nonzero = 0
    for (kind, set_name, interp, cls, diff), value in fast.items():
        if kind == "aos" or interp == "R40":
            continue
        ref = average_precision(gts, dts, cls, ("easy", "moderate", "hard").index(diff), kind, OVERLAP_SETS[set_name][kind][cls],
                                sampling=sampling, compute_aos=kind == "bbox")
        for name in ("R11", "R40") + (("aos_R11", "aos_R40") if kind == "bbox" else ()):
            got = fast[("aos" if name.startswith("aos") else kind, set_name, name[-3:], cls, diff)]
            assert got == pytest.approx(ref[name], abs=1e-9, nan_ok=True), (kind, set_name, name, cls, diff)
            compared += 1
            nonzero += bool(got > 0)
    assert compared >= 100 and nonzero >= 30  # the sets exercise matches, not only zeros
