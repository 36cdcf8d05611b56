"""KITTI's rotation convention everywhere a box turns: off-centre boxes at general angles, checked by hand.

Camera boxes (labels): an offset (dx, dz) turns to (cos ry dx + sin ry dz, -sin ry dx + cos ry dz)
(the devkit's toPolygon). Lidar boxes: (dx, dy) turns to (cos h dx - sin h dy, sin h dx + cos h dy).
The hand case: a 4 x 4 square on [0, 4] x [0, 4] and a 4 x 2 rectangle centred on the square's
corner, its length along a diagonal. Along (1, 1) the rectangle overlaps the square by 3 m^2,
along (1, -1) by 1 m^2 (integrate over the rectangle's own axes), so a mirrored heading shows.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pointpillars_kitti.augment import random_rotation
from pointpillars_kitti.boxes import camera_to_lidar_boxes, lidar_box_corners, points_in_boxes
from pointpillars_kitti.kitti_eval import frame_overlaps
from pointpillars_kitti.model.nms import rotated_nms
from pointpillars_kitti.model.target_assigner import assign_targets
from pointpillars_kitti.rotated_iou import (box3d_iou, box3d_overlap, camera_bev_corners, camera_bev_overlap, rect_corners,
                                            rotated_iou)
from pointpillars_kitti.synthetic import KITTI_LIKE_CALIB, _surface_points, scene_labels


def clip_area(subject: list[tuple[float, float]], clip: list[tuple[float, float]]) -> float:
    """Overlap area of two convex polygons, one vertex at a time (Sutherland-Hodgman; either orientation)."""
    def signed(poly):
        return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1])) / 2

    if signed(clip) < 0:
        clip = clip[::-1]
    out = list(subject)
    for (ax, ay), (bx, by) in zip(clip, clip[1:] + clip[:1]):
        def side(p):
            return (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax)
        pts, out = out, []
        for p, q in zip(pts, pts[1:] + pts[:1]):
            sp, sq = side(p), side(q)
            if sp >= 0:
                out.append(p)
            if (sp >= 0) != (sq >= 0):
                t = sp / (sp - sq)
                out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
        if not out:
            return 0.0
    return abs(signed(out))


def kitti_corners(x, z, l, w, ry):
    """The devkit's toPolygon written out: corners (l/2, w/2), (l/2, -w/2), (-l/2, -w/2), (-l/2, w/2)."""
    c, s = math.cos(ry), math.sin(ry)
    return [(x + c * dx + s * dz, z - s * dx + c * dz) for dx, dz in ((l / 2, w / 2), (l / 2, -w / 2), (-l / 2, -w / 2), (-l / 2, w / 2))]


def cam(x, z, l, w, ry, y=1.0, h=1.5):
    """(location, dims h w l, ry) of one camera box."""
    return np.array([[x, y, z]]), np.array([[h, w, l]]), np.array([ry])


def test_camera_corners_follow_the_devkit_formula():
    np.testing.assert_allclose(camera_bev_corners([0.0], [0.0], [4.0], [2.0], [np.pi / 2])[0],
                               [[1, -2], [1, 2], [-1, 2], [-1, -2]], atol=1e-12)  # at 90 degrees the length runs along -z
    got = camera_bev_corners([3.0], [12.0], [4.2], [1.7], [0.6])[0]
    want = kitti_corners(3.0, 12.0, 4.2, 1.7, 0.6)
    assert sorted(map(tuple, np.round(got, 9))) == sorted(tuple(round(v, 9) for v in p) for p in want)
    # the front corner (+l/2, 0) by hand: x = 3 + 2.1 cos 0.6, z = 12 - 2.1 sin 0.6
    front = got.mean(axis=0) + (got[0] - got[1]) / 2  # corners 0 and 1 differ by the length
    np.testing.assert_allclose(front, [3 + 2.1 * math.cos(0.6), 12 - 2.1 * math.sin(0.6)], atol=1e-12)


@pytest.mark.parametrize("ry, area", [(-np.pi / 4, 3.0), (np.pi / 4, 1.0), (3 * np.pi / 4, 3.0), (-3 * np.pi / 4, 1.0)])
def test_camera_bev_and_3d_overlap_of_off_centre_boxes_by_hand(ry, area):
    # ry = -45 degrees puts the length along (cos ry, -sin ry) = (1, 1)/sqrt 2 in (x, z)
    square = cam(2.0, 2.0, 4.0, 4.0, 0.0)
    rod = cam(0.0, 0.0, 4.0, 2.0, ry)
    assert camera_bev_overlap(*rod, *square)[0, 0] == pytest.approx(area / (16 + 8 - area))
    assert camera_bev_overlap(*rod, *square, criterion=0)[0, 0] == pytest.approx(area / 8)
    # 3D: the rod spans y in [-1, 0], the square [-0.5, 1] (camera y points down): 0.5 m in common
    rod3 = cam(0.0, 0.0, 4.0, 2.0, ry, y=0.0, h=1.0)
    inter = area * 0.5
    assert box3d_iou(*rod3, *square)[0, 0] == pytest.approx(inter / (24 + 8 - inter))
    assert box3d_overlap(*rod3, *square, criterion=0)[0, 0] == pytest.approx(inter / 8)


def test_camera_overlap_of_random_boxes_matches_an_independent_clipper():
    rng = np.random.default_rng(3)
    for _ in range(40):
        a = (rng.uniform(-3, 3), rng.uniform(5, 15), rng.uniform(1, 5), rng.uniform(0.5, 2), rng.uniform(-np.pi, np.pi))
        b = (a[0] + rng.uniform(-1.5, 1.5), a[1] + rng.uniform(-1.5, 1.5), rng.uniform(1, 5), rng.uniform(0.5, 2), rng.uniform(-np.pi, np.pi))
        inter = clip_area(kitti_corners(*a), kitti_corners(*b))
        want = inter / (a[2] * a[3] + b[2] * b[3] - inter)
        assert camera_bev_overlap(*cam(*a), *cam(*b))[0, 0] == pytest.approx(want, abs=1e-9)


def test_the_evaluation_uses_the_camera_convention():
    gt = {"name": np.array(["Car"]), "bbox": np.array([[0, 0, 50, 50.0]]), "location": np.array([[2.0, 1.0, 2.0]]),
          "dimensions": np.array([[1.5, 4.0, 4.0]]), "rotation_y": np.array([0.0])}
    dt = {"name": np.array(["Car", "Car"]), "bbox": np.array([[0, 0, 50, 50.0]] * 2), "location": np.array([[0.0, 1.0, 0.0]] * 2),
          "dimensions": np.array([[1.5, 2.0, 4.0]] * 2), "rotation_y": np.array([-np.pi / 4, np.pi / 4])}
    np.testing.assert_allclose(frame_overlaps(gt, dt, "bev")[:, 0], [3 / 21, 1 / 23])
    np.testing.assert_allclose(frame_overlaps(gt, dt, "3d")[:, 0], [3 / 21, 1 / 23])  # same heights: the BEV ratio


def test_lidar_boxes_have_the_camera_boxes_corners():
    rng = np.random.default_rng(0)
    for calib_seed in range(3):
        loc = np.column_stack([rng.uniform(-5, 5, 6), rng.uniform(1, 2, 6), rng.uniform(5, 30, 6)])
        dims = np.column_stack([rng.uniform(1, 2, 6), rng.uniform(0.5, 2, 6), rng.uniform(1, 5, 6)])
        ry = rng.uniform(-np.pi, np.pi, 6)
        lidar = camera_to_lidar_boxes(loc, dims, ry, KITTI_LIKE_CALIB)
        bottom = lidar_box_corners(lidar)[:, :4]  # bottom face, in the lidar frame
        in_cam = KITTI_LIKE_CALIB.lidar_to_rect(bottom.reshape(-1, 3)).reshape(-1, 4, 3)
        np.testing.assert_allclose(in_cam[..., 1], np.repeat(loc[:, 1:2], 4, 1), atol=1e-9)  # the bottom lies at the label's y
        want = camera_bev_corners(loc[:, 0], loc[:, 2], dims[:, 2], dims[:, 1], ry)
        for got_box, want_box in zip(in_cam[..., [0, 2]], want):
            dist = np.linalg.norm(got_box[:, None] - want_box[None], axis=-1)
            assert dist.min(axis=1).max() < 1e-9  # the same four corners


@pytest.mark.parametrize("heading, area", [(np.pi / 4, 3.0), (-np.pi / 4, 1.0)])
def test_lidar_rectangles_turn_counter_clockwise(heading, area):
    np.testing.assert_allclose(rect_corners([[0, 0, 4, 2, np.pi / 2]])[0], [[-1, 2], [-1, -2], [1, -2], [1, 2]], atol=1e-12)
    iou = rotated_iou([[0, 0, 4, 2, heading]], [[2, 2, 4, 4, 0]])[0, 0]
    assert iou == pytest.approx(area / (24 - area))


def test_nms_suppresses_by_the_overlap_of_the_true_headings():
    square = [2.0, 2.0, -1.0, 4.0, 4.0, 1.5, 0.0]
    along = [0.0, 0.0, -1.0, 4.0, 2.0, 1.5, np.pi / 4]  # overlaps the square by IoU 3/21 = 0.143
    across = [0.0, 0.0, -1.0, 4.0, 2.0, 1.5, -np.pi / 4]  # by 1/23 = 0.043
    keep = rotated_nms(torch.tensor([square, along, across]), torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.1)
    assert keep.tolist() == [0, 2]


def test_target_assignment_picks_the_anchor_of_the_heading():
    anchors = torch.tensor([[10.0, 0.0, -1.0, 3.9, 1.6, 1.56, 0.0], [10.0, 0.0, -1.0, 3.9, 1.6, 1.56, 1.57]])
    classes = torch.tensor([0, 0])
    for heading, labels in ((1.4, [0, 1]), (-1.7, [0, 1]), (0.3, [1, 0]), (2.9, [1, 0])):
        gt = torch.tensor([[10.2, 0.1, -0.9, 3.9, 1.6, 1.56, heading, 1.0]])
        got, targets = assign_targets(anchors, classes, gt, matched=[0.6], unmatched=[0.45])
        assert got.tolist() == labels
        pos = got.tolist().index(1)
        assert targets[pos, 6].item() == pytest.approx(heading - anchors[pos, 6].item(), abs=1e-6)  # the residual heading


def _box_with_corner_points(rng, box):
    """Points just inside the four bottom corners and along the edges of a lidar box."""
    u = np.array([[0.49, 0.49], [-0.49, 0.49], [-0.49, -0.49], [0.49, -0.49], [0.49, 0.0], [0.0, -0.49]])
    local = np.column_stack([u * box[3:5], rng.uniform(-0.45, 0.45, len(u)) * box[5]])
    c, s = np.cos(box[6]), np.sin(box[6])
    xy = np.column_stack([c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1]])
    return np.column_stack([xy + box[:2], local[:, 2] + box[2], np.zeros(len(u))])


def test_global_rotation_keeps_every_point_in_its_box():
    rng = np.random.default_rng(5)
    boxes = np.array([[12.0, 4.0, -0.9, 4.2, 1.7, 1.5, 0.7], [25.0, -6.0, -0.8, 0.8, 0.6, 1.7, -2.1], [8.0, -3.0, -0.9, 1.8, 0.6, 1.7, 2.6]])
    pts = np.vstack([_box_with_corner_points(rng, b) for b in boxes])
    before = points_in_boxes(pts, boxes)
    assert before.sum(1).tolist() == [6, 6, 6]
    for limits in ([0.6, 0.6], [-1.1, -1.1], [-np.pi / 4, np.pi / 4], [-np.pi / 4, np.pi / 4]):
        p2, b2 = random_rotation(pts, boxes, limits, rng)
        np.testing.assert_array_equal(points_in_boxes(p2, b2), before)
        assert np.linalg.norm(p2[:, :2], axis=1) == pytest.approx(np.linalg.norm(pts[:, :2], axis=1))  # a rotation about z


def test_generated_objects_lie_in_the_boxes_their_labels_describe():
    rng = np.random.default_rng(2)
    for heading in (0.5, -1.2, 2.4, -2.9):
        box = np.array([15.0, -3.0, -1.73 + 0.78, 3.9, 1.6, 1.56, heading])
        points = _surface_points(box, 300, rng)
        label = scene_labels(box[None], ["Car"], np.array([0]))[0]
        back = camera_to_lidar_boxes(np.array([label.location]), np.array([label.dims]), np.array([label.rotation_y]), KITTI_LIKE_CALIB)
        np.testing.assert_allclose(back[0, :6], box[:6], atol=0.01)  # labels are written with 2 decimals
        grown = back.copy()
        grown[:, 3:6] += 0.2  # the surface points carry 2 cm of noise
        assert points_in_boxes(points, grown)[0].all()
