"""TuSimple labels and loader (lane_tusimple.labels, .dataset, .decode) on written files and on the
real sample frames under $SLR_DATA_ROOT/tusimple."""
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import DataError
from lane_tusimple.dataset import TuSimpleDataset
from lane_tusimple.decode import decode_lanes
from lane_tusimple.lane_eval import LaneEvaluator, bench_image, lane_threshold
from lane_tusimple.labels import (TUSIMPLE_ROW_ANCHORS, LaneRecord, lane_x_at, order_lanes, read_label_file,
                                  row_anchor_targets, segmentation_target)
from lane_tusimple.synthetic import ensure_synthetic_tusimple, tusimple_h_samples


def _tusimple_root() -> Path:
    root = os.environ.get("SLR_DATA_ROOT")
    if not root:
        pytest.skip("SLR_DATA_ROOT is not set; point it at the shared sample data to run the TuSimple data tests")
    path = Path(root) / "tusimple"
    if not path.is_dir():
        pytest.skip(f"{path} does not exist; the TuSimple sample data is absent")
    return path


def _shift(lanes, d):
    return [[x + d if x >= 0 else x for x in lane] for lane in lanes]


# --- on files the tests write ----------------------------------------------------------------

def test_row_anchors_are_ufld_tusimple():
    assert len(TUSIMPLE_ROW_ANCHORS) == 56
    assert TUSIMPLE_ROW_ANCHORS[0] == 64 and TUSIMPLE_ROW_ANCHORS[-1] == 284
    # at 720 rows the anchors are exactly TuSimple's h_samples 160..710
    assert [a * 720 / 288 for a in TUSIMPLE_ROW_ANCHORS] == list(range(160, 720, 10)) == tusimple_h_samples(720)


def test_lane_x_is_interpolated_between_labelled_points():
    xs = lane_x_at([-2, 100, 120, -2], [10, 20, 30, 40], [15, 20, 25, 30, 35])
    assert xs.tolist() == [-1.0, 100.0, 110.0, 120.0, -1.0]


def test_lanes_take_slots_around_the_ego_lane():
    hs = [400.0, 700.0]
    # bottom x: 100, 500, 700, 1100, 1250 (width 1280, centre 640)
    lanes = [[700, 700], [300, 100], [900, 1250], [550, 500], [800, 1100]]
    slots = order_lanes(LaneRecord("a.jpg", [list(map(float, l)) for l in lanes], hs), 1280, 720)
    assert slots == [[300, 100], [550, 500], [700, 700], [800, 1100]]  # the far-right lane (1250) has no slot


def test_row_anchor_targets_by_hand():
    # a vertical lane at x = 700 over rows 400..710 of a 1280x720 frame, nothing else
    hs = [float(h) for h in range(160, 720, 10)]
    lane = [700.0 if h >= 400 else -2.0 for h in hs]
    target = row_anchor_targets(LaneRecord("a.jpg", [lane], hs), 1280, 720)
    assert target.shape == (56, 4)
    cell = int(700 // (1279 / 99))  # 700 / 12.92 = 54.2
    present = np.array([h >= 400 for h in hs])
    # right of the centre (640): slot 2, the first right lane
    assert (target[present, 2] == cell).all() and cell == 54
    assert (target[~present, 2] == 100).all()
    assert (target[:, [0, 1, 3]] == 100).all()


def test_encoding_then_decoding_a_label_recovers_it():
    hs = [float(h) for h in range(160, 720, 10)]
    lanes = [[max(-2.0, 600 - 1.5 * (h - 160)) if h >= 250 else -2.0 for h in hs], [700 + 1.2 * (h - 160) for h in hs]]
    lanes = [[x if 0 <= x <= 1279 else -2.0 for x in lane] for lane in lanes]
    record = LaneRecord("a.jpg", lanes, hs)
    target = torch.from_numpy(row_anchor_targets(record, 1280, 720))
    logits = torch.nn.functional.one_hot(target, 101).permute(2, 0, 1).float() * 60.0
    pred = decode_lanes(logits, 1280, 720, hs)
    assert len(pred) == 2
    for lane in pred:  # every decoded point is within half a cell (6.46 px, +0.05 for rounding to 0.1 px) of a label point
        assert any(max(abs(p - g) for p, g in zip(lane, gt) if g >= 0 and p >= 0) <= 1279 / 99 / 2 + 0.05 for gt in lanes)
    assert bench_image(pred, lanes, hs) == (1.0, 0.0, 0.0)


def test_segmentation_target_marks_lane_slots():
    hs = [float(h) for h in range(160, 720, 10)]
    record = LaneRecord("a.jpg", [[300.0] * 56, [1000.0] * 56], hs)
    mask = segmentation_target(record, 1280, 720, (36, 100))
    assert mask.shape == (36, 100)
    assert set(np.unique(mask)) == {0, 2, 3}  # left-of-centre lane -> slot 1 (class 2), right -> slot 2 (class 3)
    assert (mask[20, 22:25] == 2).any() and (mask[20, 77:80] == 3).any()


def test_loader_reads_written_frames(tmp_path):
    root = ensure_synthetic_tusimple(tmp_path, train=3, test=1, image_size=(320, 180), seed=3)
    ds = TuSimpleDataset(root, ["train_label.json"], input_size=(96, 256))
    image, cls_target, seg_target = ds[0]
    assert image.shape == (3, 96, 256) and cls_target.shape == (56, 4) and seg_target.shape == (12, 32)
    assert ds.image_size(0) == (320, 180)
    assert (cls_target < 100).sum() > 0 and seg_target.max() > 0
    assert len(read_label_file(root / "test_label.json")) == 1


def test_loader_errors_name_the_problem(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"lanes": [[1, 2]], "h_samples": [1, 2, 3], "raw_file": "x.jpg"}) + "\n")
    with pytest.raises(DataError, match="h_samples"):
        TuSimpleDataset(tmp_path, ["labels.json"])
    (tmp_path / "labels.json").write_text(json.dumps({"lanes": [[1, 2, 3]], "h_samples": [1, 2, 3], "raw_file": "x.jpg"}) + "\n")
    with pytest.raises(DataError, match="does not exist"):
        TuSimpleDataset(tmp_path, ["labels.json"])[0]
    with pytest.raises(DataError, match="does not exist"):
        TuSimpleDataset(tmp_path, ["missing.json"])


# --- on the real sample data ------------------------------------------------------------------

@pytest.mark.data
def test_real_1280x720_frames_load_with_labels():
    root = _tusimple_root() / "fullres_1280x720"
    ds = TuSimpleDataset(root, ["label_data_sample.json"])
    assert len(ds) == 6
    for i in range(len(ds)):
        image, cls_target, seg_target = ds[i]
        assert ds.image_size(i) == (1280, 720)
        assert image.shape == (3, 288, 800) and seg_target.shape == (36, 100)
        lanes_present = (cls_target < 100).any(dim=0).sum().item()
        assert lanes_present == min(4, sum(1 for lane in ds.records[i].lanes if sum(x >= 0 for x in lane) >= 2))
        assert abs(image.mean().item()) < 2.0


@pytest.mark.data
def test_real_512x288_frames_load_with_labels():
    root = _tusimple_root() / "downscaled_512x288"
    ds = TuSimpleDataset(root, ["label_data.json"])
    assert len(ds) == 10
    for i in range(len(ds)):
        image, cls_target, _ = ds[i]
        assert ds.image_size(i) == (512, 288)
        assert ds.records[i].h_samples == list(range(96, 288, 4))
        assert (cls_target < 100).sum() > 0


@pytest.mark.data
@pytest.mark.parametrize("label_file", ["fullres_1280x720/label_data_sample.json", "downscaled_512x288/label_data.json",
                                        "label_files/label_data_0313.json"])
def test_real_labels_scored_against_themselves(label_file):
    records = read_label_file(_tusimple_root() / label_file)
    same, near = LaneEvaluator(), LaneEvaluator()
    for r in records:
        same.add(r.lanes, r.lanes, r.h_samples)
        near.add(_shift(r.lanes, 10), r.lanes, r.h_samples)  # 10 px is inside every lane's threshold (>= 20)
    for result in (same.result(), near.result()):
        assert (result.accuracy, result.fp, result.fn) == (1.0, 0.0, 0.0)
    assert same.images == len(records)


@pytest.mark.data
def test_real_frame_shifted_by_30px_by_hand():
    """clips/0313-2/520/20.jpg at 512x288: lanes of slope -0.63, +1.67, -3.03 (x per row) and one empty lane.

    Thresholds 20/cos(atan k): lane 0 23.6 px, lane 1 39.1 px, lane 2 63.6 px, empty lane 20 px.
    Shifting every point by +30 px keeps lanes 1 and 2 (and the empty lane, still all -2).
    Lane 0 keeps its 3 missing rows against every prediction; against shifted lane 2 it also
    agrees at rows 4, 5, 6 (276 vs 279, 264 vs 276, 252 vs 274): best 6/48 = 0.125.
    Accuracy (0.125 + 1 + 1 + 1) / 4 = 0.78125, FP 1/4, FN 1/4.
    """
    records = read_label_file(_tusimple_root() / "downscaled_512x288/label_data.json")
    r = next(rec for rec in records if rec.raw_file == "clips/0313-2/520/20.jpg")
    thresholds = [lane_threshold(lane, r.h_samples) for lane in r.lanes]
    assert thresholds[0] == pytest.approx(23.6, abs=0.1) and thresholds[1] == pytest.approx(39.1, abs=0.1)
    assert thresholds[2] == pytest.approx(63.6, abs=0.1) and thresholds[3] == 20.0
    acc, fp, fn = bench_image(_shift(r.lanes, 30), r.lanes, r.h_samples)
    assert acc == pytest.approx(0.78125) and fp == 0.25 and fn == 0.25


@pytest.mark.data
def test_real_frames_encode_and_decode_within_the_metric():
    root = _tusimple_root() / "fullres_1280x720"
    ds = TuSimpleDataset(root, ["label_data_sample.json"])
    evaluator = LaneEvaluator()
    for i, r in enumerate(ds.records):
        target = torch.from_numpy(row_anchor_targets(r, 1280, 720))
        logits = torch.nn.functional.one_hot(target, 101).permute(2, 0, 1).float() * 60.0
        evaluator.add(decode_lanes(logits, 1280, 720, r.h_samples), r.lanes, r.h_samples)
    result = evaluator.result()
    # frames with at most 4 lanes survive the 100-cell quantisation exactly; the 5-lane frame loses its worst lane
    assert result.accuracy == pytest.approx(1.0) and result.fn == 0.0
    assert not math.isnan(result.fp)


def test_augmentation_moves_lanes_with_the_pixels():
    from PIL import Image, ImageDraw

    from lane_tusimple.augment import UFLDAugment

    width, height = 320, 180
    hs = [float(h) for h in range(40, 180, 10)]
    lane = [100 + 0.5 * (h - 40) for h in hs]
    image = Image.new("RGB", (width, height))
    ImageDraw.Draw(image).line(list(zip(lane, hs)), fill=(255, 255, 255), width=1)
    moved, record = UFLDAugment.apply(image, LaneRecord("a.jpg", [lane], hs), angle_deg=5.0, dx=12.0, dy=-7.0)
    pixels = np.asarray(moved, dtype=np.float64).sum(axis=2)
    checked = 0
    for h, x in zip(record.h_samples, record.lanes[0]):
        if x >= 0 and pixels[int(h)].max() > 0:
            assert abs(pixels[int(h)].argmax() - x) <= 1.5, (h, x)
            checked += 1
    assert checked >= 8
    # a pure shift moves every labelled point by (dx, dy): rows shift, so x follows the lane's slope 0.5
    _, shifted = UFLDAugment.apply(image, LaneRecord("a.jpg", [lane], hs), angle_deg=0.0, dx=10.0, dy=20.0)
    for h, x in zip(hs, shifted.lanes[0]):
        if x >= 0:
            assert x == pytest.approx(100 + 0.5 * (h - 20 - 40) + 10)


def test_augmented_items_change_between_reads(tmp_path):
    from lane_tusimple.augment import UFLDAugment

    root = ensure_synthetic_tusimple(tmp_path, train=1, test=1, image_size=(320, 180), seed=5)
    ds = TuSimpleDataset(root, ["train_label.json"], input_size=(96, 256), cache=True, augment=UFLDAugment())
    torch.manual_seed(0)
    first, second = ds[0], ds[0]
    assert first[0].shape == second[0].shape == (3, 96, 256)
    assert not torch.equal(first[1], second[1])
    torch.manual_seed(0)
    assert torch.equal(ds[0][1], first[1])  # seeded runs repeat
