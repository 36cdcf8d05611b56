"""KITTI layout readers, calibration and box transforms, field-of-view filtering, synthetic scenes."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pointpillars_kitti.boxes import (boxes_to_image_bboxes, camera_to_lidar_boxes, fov_mask, lidar_box_corners,
                                      lidar_to_camera_boxes, limit_period, points_in_boxes)
from pointpillars_kitti.kitti_io import (Calibration, Object3d, frame_ids, labels_to_arrays, read_calib, read_image_size,
                                         read_labels, read_points, read_split, write_calib, write_labels, write_points)
from pointpillars_kitti.synthetic import KITTI_LIKE_CALIB, generate_kitti_scenes, write_png
from core.errors import DataError


def kitti_root() -> Path:
    root = os.environ.get("SLR_DATA_ROOT")
    if not root:
        pytest.skip("SLR_DATA_ROOT is not set (it names the folder holding kitti/)")
    path = Path(root) / "kitti"
    if not (path / "training" / "velodyne").is_dir():
        pytest.skip(f"no KITTI sample frames under {path}")
    return path


FRAMES = [f"{i:06d}" for i in range(8)]


def test_label_line_has_15_fields_and_round_trips(tmp_path):
    line = "Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01"
    obj = Object3d.from_line(line)
    assert obj.name == "Pedestrian" and obj.occluded == 0 and obj.bbox == (712.40, 143.00, 810.73, 307.92)
    assert obj.dims == (1.89, 0.48, 1.20) and obj.location == (1.84, 1.47, 8.41) and obj.rotation_y == pytest.approx(0.01)
    assert obj.to_line() == line
    write_labels(tmp_path / "l.txt", [obj, Object3d.from_line(line + " 0.75")])
    back = read_labels(tmp_path / "l.txt")
    assert back[1].score == pytest.approx(0.75) and back[0].score is None
    with pytest.raises(DataError, match="15 fields"):
        Object3d.from_line("Car 0 0 1 2 3")


def test_points_calib_image_and_split_files_round_trip(tmp_path):
    pts = np.arange(40, dtype=np.float32).reshape(10, 4)
    write_points(tmp_path / "p.bin", pts)
    assert (tmp_path / "p.bin").stat().st_size == 160
    np.testing.assert_array_equal(read_points(tmp_path / "p.bin"), pts)
    (tmp_path / "bad.bin").write_bytes(b"\0" * 10)
    with pytest.raises(DataError, match="multiple of 4"):
        read_points(tmp_path / "bad.bin")
    write_calib(tmp_path / "c.txt", KITTI_LIKE_CALIB)
    calib = read_calib(tmp_path / "c.txt")
    np.testing.assert_allclose(calib.P2, KITTI_LIKE_CALIB.P2)
    np.testing.assert_allclose(calib.Tr_velo_to_cam, KITTI_LIKE_CALIB.Tr_velo_to_cam)
    write_png(tmp_path / "i.png", 375, 1242)
    assert read_image_size(tmp_path / "i.png") == (375, 1242)
    (tmp_path / "ImageSets").mkdir()
    (tmp_path / "ImageSets" / "val.txt").write_text("000003\n000001\n\n")
    assert read_split(tmp_path, "val") == ["000003", "000001"]
    with pytest.raises(DataError, match="ImageSets/train.txt"):
        read_split(tmp_path, "train")


def test_calibration_transforms_hand_case():
    # velodyne x forward, y left, z up -> camera x right, y down, z forward; no rotation in R0
    calib = Calibration(np.array([[700.0, 0, 600, 0], [0, 700, 200, 0], [0, 0, 1, 0]]), np.eye(3),
                        np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0]]))
    rect = calib.lidar_to_rect(np.array([[10.0, 2.0, -1.0]]))
    np.testing.assert_allclose(rect, [[-2.0, 1.0, 10.0]])
    np.testing.assert_allclose(calib.rect_to_lidar(rect), [[10.0, 2.0, -1.0]])
    uv, depth = calib.rect_to_img(rect)
    np.testing.assert_allclose(uv, [[600 - 140, 200 + 70]])
    assert depth[0] == pytest.approx(10.0)
    # a car 10 m ahead, facing the camera's x axis (ry = 0) is heading -pi/2 in lidar terms
    box = camera_to_lidar_boxes([[0.0, 1.0, 10.0]], [[1.5, 1.6, 4.0]], [0.0], calib)
    np.testing.assert_allclose(box, [[10.0, 0.0, -1.0 + 0.75, 4.0, 1.6, 1.5, -np.pi / 2]], atol=1e-12)


def test_real_frames_read_with_the_documented_shapes():
    root = kitti_root()
    for fid in FRAMES:
        pts = read_points(root / "training" / "velodyne" / f"{fid}.bin")
        assert pts.shape[1] == 4 and 100_000 < len(pts) < 130_000
        assert np.isfinite(pts).all() and pts[:, 3].min() >= 0 and pts[:, 3].max() <= 1
        height, width = read_image_size(root / "training" / "image_2" / f"{fid}.png")
        assert 370 <= height <= 375 and 1224 <= width <= 1242
        calib = read_calib(root / "training" / "calib" / f"{fid}.txt")
        assert calib.P2.shape == (3, 4) and calib.R0_rect.shape == (3, 3) and "Tr_imu_to_velo" in calib.extra
    labels = read_labels(root / "training" / "label_2" / "000000.txt")
    assert [o.name for o in labels] == ["Pedestrian"] and labels[0].location == (1.84, 1.47, 8.41)
    assert frame_ids(root) == FRAMES


def test_real_frames_boxes_round_trip_and_hold_points():
    root = kitti_root()
    for fid in FRAMES:
        calib = read_calib(root / "training" / "calib" / f"{fid}.txt")
        pts = read_points(root / "training" / "velodyne" / f"{fid}.bin")
        a = labels_to_arrays([o for o in read_labels(root / "training" / "label_2" / f"{fid}.txt") if o.name != "DontCare"])
        boxes = camera_to_lidar_boxes(a["location"], a["dimensions"], a["rotation_y"], calib)
        loc, dims, ry = lidar_to_camera_boxes(boxes, calib)
        np.testing.assert_allclose(loc, a["location"], atol=1e-9)
        np.testing.assert_allclose(dims, a["dimensions"])
        np.testing.assert_allclose(limit_period(ry - a["rotation_y"]), 0, atol=1e-9)
        assert (points_in_boxes(pts, boxes).sum(1) >= 5).all()  # every labelled object has lidar points
        # the label's 2D box is the projection of its 3D box (untruncated objects, within a few pixels)
        image_size = read_image_size(root / "training" / "image_2" / f"{fid}.png")
        proj = boxes_to_image_bboxes(boxes, calib, image_size)
        full = a["truncated"] == 0
        assert np.abs(proj[full] - a["bbox"][full]).max() < 12


def test_fov_filter_keeps_exactly_the_points_projecting_into_the_image():
    root = kitti_root()
    calib = read_calib(root / "training" / "calib" / "000001.txt")
    size = read_image_size(root / "training" / "image_2" / "000001.png")
    pts = read_points(root / "training" / "velodyne" / "000001.bin")
    mask = fov_mask(pts, calib, size)
    assert 0.1 < mask.mean() < 0.25  # the camera sees about a sixth of the 360-degree scan
    assert (pts[mask, 0] > 0).all()  # everything kept lies in front of the car
    uv, _ = calib.lidar_to_img(pts[mask, :3])
    assert (uv >= 0).all() and (uv[:, 0] < size[1]).all() and (uv[:, 1] < size[0]).all()
    behind = pts[:, 0] < -1
    assert not mask[behind].any()


def test_box_corners_and_points_in_boxes_hand_case():
    box = np.array([[1.0, 2.0, 0.5, 4.0, 2.0, 1.0, np.pi / 2]])
    corners = lidar_box_corners(box)[0]
    np.testing.assert_allclose(corners[:, 0].min(), 0.0, atol=1e-12)  # rotated 90 degrees: width along x
    np.testing.assert_allclose(corners[:, 1].max(), 4.0, atol=1e-12)
    pts = np.array([[1.0, 3.9, 0.5, 0], [1.9, 2.0, 0.5, 0], [2.1, 2.0, 0.5, 0], [1.0, 2.0, 1.1, 0]])
    np.testing.assert_array_equal(points_in_boxes(pts, box)[0], [True, True, False, False])


def test_synthetic_scenes_are_in_the_kitti_layout_and_consistent(tmp_path):
    root = generate_kitti_scenes(tmp_path / "syn", num_train=3, num_val=2, seed=1)
    assert read_split(root, "train") == ["000000", "000001", "000002"] and read_split(root, "val") == ["000003", "000004"]
    for fid in frame_ids(root):
        pts = read_points(root / "training" / "velodyne" / f"{fid}.bin")
        calib = read_calib(root / "training" / "calib" / f"{fid}.txt")
        assert read_image_size(root / "training" / "image_2" / f"{fid}.png") == (375, 1242)
        labels = read_labels(root / "training" / "label_2" / f"{fid}.txt")
        assert len(labels) >= 1 and {o.name for o in labels} <= {"Car", "Pedestrian", "Cyclist"}
        a = labels_to_arrays(labels)
        boxes = camera_to_lidar_boxes(a["location"], a["dimensions"], a["rotation_y"], calib)
        assert (points_in_boxes(pts, boxes).sum(1) >= 5).all()
        ground = pts[~points_in_boxes(pts, boxes).any(0)]
        assert np.median(ground[:, 2]) == pytest.approx(-1.73, abs=0.05)  # the ground plane
        assert ((a["bbox"][:, 3] - a["bbox"][:, 1]) > 25).all()
    stamp = (root / ".synthetic_kitti").read_text()
    generate_kitti_scenes(root, num_train=3, num_val=2, seed=1)  # reused, not rewritten
    assert (root / ".synthetic_kitti").read_text() == stamp
