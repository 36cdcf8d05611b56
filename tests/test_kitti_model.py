"""PointPillars pieces: voxelizer (against spconv), pillar features, anchors, box coding, targets, losses, decoding."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from core.harness.config import load_run_config
from pointpillars_kitti.augment import GTDatabase, random_flip_x, random_rotation, random_scaling
from pointpillars_kitti.boxes import points_in_boxes
from pointpillars_kitti.kitti_io import read_points
from pointpillars_kitti.model import PointPillars
from pointpillars_kitti.model.anchors import make_anchors
from pointpillars_kitti.model.box_coder import decode_boxes, encode_boxes
from pointpillars_kitti.model.losses import direction_targets, sigmoid_focal_loss, weighted_smooth_l1
from pointpillars_kitti.model.nms import rotated_nms
from pointpillars_kitti.model.target_assigner import assign_targets
from pointpillars_kitti.voxelizer import Voxelizer, grid_size

CONFIG = Path(__file__).resolve().parents[1] / "pointpillars_kitti" / "configs" / "pointpillars.yaml"
PAPER_RANGE = [0, -39.68, -3, 69.12, 39.68, 1]


def spconv_voxelizer(voxel, pc_range, max_points, max_voxels):
    utils = pytest.importorskip("spconv.pytorch.utils")
    return utils.PointToVoxel(vsize_xyz=voxel, coors_range_xyz=pc_range, num_point_features=4,
                              max_num_voxels=max_voxels, max_num_points_per_voxel=max_points)


def assert_same_voxels(points, voxel, pc_range, max_points, max_voxels):
    ref = spconv_voxelizer(voxel, pc_range, max_points, max_voxels)(points)
    ours = Voxelizer(voxel, pc_range, max_points, max_voxels)(points)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        assert torch.equal(a, b.to(a.dtype))


def test_voxelizer_matches_spconv_on_random_points_with_caps():
    gen = torch.Generator().manual_seed(0)
    pts = torch.rand(5000, 4, generator=gen) * torch.tensor([12.0, 12.0, 6.0, 1.0]) - torch.tensor([1.0, 6.0, 3.5, 0.0])
    pts[:2000, :2] = pts[:2000, :2] * 0.05 + 2.0  # crowd some pillars past 32 points
    assert_same_voxels(pts, [0.16, 0.16, 4], [0, -4.0, -3, 8.0, 4.0, 1], 32, 40000)
    assert_same_voxels(pts, [0.5, 0.5, 4], [0, -4.0, -3, 8.0, 4.0, 1], 5, 50)  # both caps bind


def test_voxelizer_matches_spconv_on_real_frames():
    root = os.environ.get("SLR_DATA_ROOT")
    velo = Path(root or "") / "kitti" / "training" / "velodyne"
    if not root or not velo.is_dir():
        pytest.skip("SLR_DATA_ROOT is unset or holds no kitti/training/velodyne")
    for fid in ("000000", "000005"):
        pts = torch.from_numpy(read_points(velo / f"{fid}.bin"))
        assert_same_voxels(pts, [0.16, 0.16, 4], PAPER_RANGE, 32, 16000)
        assert_same_voxels(pts, [0.16, 0.16, 4], PAPER_RANGE, 32, 3000)


def test_grid_and_anchor_layout_follow_pointpillar_yaml():
    assert grid_size(PAPER_RANGE, [0.16, 0.16, 4]) == (432, 496, 1)
    cfg = load_run_config(CONFIG, "paper")["model"]
    anchors, classes = make_anchors(cfg["point_cloud_range"], (216, 248), cfg["anchors"])
    assert anchors.shape == (248, 216, 6, 7) and classes.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_allclose(anchors[0, 0, 0].numpy(), [0, -39.68, -1.78 + 1.56 / 2, 3.9, 1.6, 1.56, 0], atol=1e-5)
    np.testing.assert_allclose(anchors[-1, -1, 3].numpy(), [69.12, 39.68, -0.6 + 1.73 / 2, 0.8, 0.6, 1.73, 1.57], atol=1e-5)


def test_full_size_model_matches_the_published_parameter_count():
    model = PointPillars(load_run_config(CONFIG, "paper")["model"])
    # VFE 10x64 + BN; backbone 64/128/256 with 3/5/5 extra convs; deconvs to 3 x 128; 1x1 head convs (18 + 42 + 12)
    assert sum(p.numel() for p in model.parameters()) == 4_834_888
    assert model.anchors.shape == (248 * 216 * 6, 7)


def test_pillar_decorations_hand_case():
    model = PointPillars(load_run_config(CONFIG, "smoke")["model"])
    vfe = model.vfe
    voxels = torch.zeros(1, 32, 4)
    voxels[0, :2] = torch.tensor([[1.0, 2.0, 0.0, 0.5], [1.2, 2.2, -1.0, 0.1]])
    coords = torch.tensor([[0, 0, 46, 3]])  # batch, z, y, x
    feats = vfe.decorate(voxels, torch.tensor([2]), coords)
    assert feats.shape == (1, 32, 10)
    x_c = 3 * 0.32 + 0.16 + 0.0
    y_c = 46 * 0.32 + 0.16 - 10.24
    z_c = 0 * 4 + 2 - 3
    np.testing.assert_allclose(feats[0, 0].numpy(), [1.0, 2.0, 0.0, 0.5, -0.1, -0.1, 0.5, 1.0 - x_c, 2.0 - y_c, 0.0 - z_c], atol=1e-5)
    assert feats[0, 2:].abs().sum() == 0  # padding stays zero


def test_pillar_features_normalise_over_pillars_and_points_as_openpcdet():
    # OpenPCDet runs BatchNorm1d on (V, C, P); the flat (V * P, C) view must give the same features and running statistics
    model = PointPillars(load_run_config(CONFIG, "smoke")["model"])
    vfe, ref = model.vfe, PointPillars(load_run_config(CONFIG, "smoke")["model"]).vfe
    ref.load_state_dict(vfe.state_dict())
    gen = torch.Generator().manual_seed(0)
    voxels = torch.randn(40, 32, 4, generator=gen)
    num_points = torch.randint(1, 33, (40,), generator=gen)
    coords = torch.column_stack([torch.zeros(40, dtype=torch.long), torch.zeros(40, dtype=torch.long),
                                 torch.randint(0, 64, (40,), generator=gen), torch.randint(0, 64, (40,), generator=gen)])
    for train in (True, False):
        vfe.train(train)
        ref.train(train)
        x = ref.linear(ref.decorate(voxels, num_points, coords))
        expected = torch.relu(ref.bn(x.permute(0, 2, 1)).permute(0, 2, 1)).max(dim=1).values
        torch.testing.assert_close(vfe(voxels, num_points, coords), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(vfe.bn.running_mean, ref.bn.running_mean)
        torch.testing.assert_close(vfe.bn.running_var, ref.bn.running_var)


def test_box_coding_round_trip_and_hand_values():
    anchors = torch.tensor([[10.0, 0.0, -1.0, 3.9, 1.6, 1.56, 0.0]])
    boxes = torch.tensor([[11.0, 0.5, -0.9, 4.2, 1.7, 1.5, 0.3]])
    codes = encode_boxes(boxes, anchors)
    diag = math.hypot(3.9, 1.6)
    np.testing.assert_allclose(codes[0].numpy(), [1 / diag, 0.5 / diag, 0.1 / 1.56, math.log(4.2 / 3.9), math.log(1.7 / 1.6), math.log(1.5 / 1.56), 0.3], rtol=1e-5)
    torch.testing.assert_close(decode_boxes(codes, anchors), boxes)


def test_target_assignment_hand_case():
    anchors = torch.tensor([[10.0, 0.0, -1.0, 3.9, 1.6, 1.56, 0.0],     # on the car
                            [10.5, 0.3, -1.0, 3.9, 1.6, 1.56, 0.0],     # IoU ~0.59: between thresholds -> ignored
                            [30.0, 0.0, -1.0, 3.9, 1.6, 1.56, 0.0],     # far: negative
                            [10.0, 0.0, -0.6, 0.8, 0.6, 1.73, 0.0]])    # pedestrian anchor, no pedestrian: negative
    classes = torch.tensor([0, 0, 0, 1])
    gt = torch.tensor([[10.0, 0.0, -0.9, 3.9, 1.6, 1.56, 0.1, 1.0], [0, 0, 0, 0, 0, 0, 0, 0]])
    labels, targets = assign_targets(anchors, classes, gt, matched=[0.6, 0.5], unmatched=[0.45, 0.35])
    assert labels.tolist() == [1, -1, 0, 0]
    torch.testing.assert_close(targets[0], encode_boxes(gt[:1, :7], anchors[:1])[0])
    assert targets[1:].abs().sum() == 0
    # a box no anchor reaches 0.6 with still gets its best anchor
    gt2 = torch.tensor([[10.5, 0.3, -0.9, 3.9, 1.6, 1.56, 0.0, 1.0]])
    labels2, _ = assign_targets(anchors[1:3], classes[1:3], gt2, matched=[0.6], unmatched=[0.45])
    assert labels2.tolist() == [1, 0]


def test_focal_smooth_l1_and_direction_hand_values():
    logits = torch.tensor([[0.0, 2.0]])
    targets = torch.tensor([[1.0, 0.0]])
    loss = sigmoid_focal_loss(logits, targets, torch.ones(1))
    p1 = torch.sigmoid(torch.tensor(2.0)).item()
    expected = [0.25 * 0.5 ** 2 * math.log(2), 0.75 * p1 ** 2 * -math.log(1 - p1)]
    np.testing.assert_allclose(loss[0].numpy(), expected, rtol=1e-5)
    l1 = weighted_smooth_l1(torch.tensor([[0.05, 1.0]]), torch.zeros(1, 2), torch.ones(1), [1.0, 2.0])
    np.testing.assert_allclose(l1[0].numpy(), [0.5 * 0.05 ** 2 * 9, 2.0 - 0.5 / 9], rtol=1e-5)
    anchors = torch.zeros(3, 7)
    box_t = torch.zeros(3, 7)
    box_t[:, 6] = torch.tensor([0.0, 1.0, -1.0])  # heading 0 and 1 rad: bin 0 (offset pi/4); -1 rad: bin 1
    assert direction_targets(anchors, box_t, 0.78539).tolist() == [1, 0, 1]


def test_model_forward_loss_backward_and_decoding():
    cfg = load_run_config(CONFIG, "smoke")["model"]
    torch.manual_seed(0)
    model = PointPillars(cfg)
    pts = torch.rand(3000, 4) * torch.tensor([25.0, 25.0, 3.0, 1.0]) - torch.tensor([0.0, 12.5, 2.5, 0.0])
    gt = torch.tensor([[[10.0, 0.0, -0.9, 3.9, 1.6, 1.56, 0.3, 1.0]]])
    model.train()
    preds = model(model.voxelize([pts]))
    n = model.anchors.shape[0]
    assert preds["cls_preds"].shape == (1, n, 3) and preds["box_preds"].shape == (1, n, 7) and preds["dir_preds"].shape == (1, n, 2)
    loss, parts = model.loss(preds, gt)
    assert parts["num_pos"] >= 1 and torch.isfinite(loss)
    assert 0 <= parts["positives_correct"] <= parts["positives"] == parts["num_pos"]  # the training accuracy counts positive anchors
    loss.backward()
    assert model.backbone.blocks[0][1].conv.weight.grad.abs().sum() > 0
    # decoding: zero codes give the anchors back, the heading turned by 0 or pi into the predicted direction bin
    zero = {"box_preds": torch.zeros(1, n, 7), "dir_preds": torch.zeros(1, n, 2), "cls_preds": torch.zeros(1, n, 3)}
    for bin_ in (0, 1):
        zero["dir_preds"].zero_()
        zero["dir_preds"][..., bin_] = 1.0
        boxes = model.decode(zero)[0]
        torch.testing.assert_close(boxes[:, :6], model.anchors[:, :6])
        turn = torch.remainder(boxes[:, 6] - model.anchors[:, 6] + 0.1, math.pi) - 0.1
        assert turn.abs().max() < 1e-5
        codes = torch.zeros(n, 7)
        codes[:, 6] = boxes[:, 6] - model.anchors[:, 6]
        assert (direction_targets(model.anchors, codes, 0.78539) == bin_).all()


def test_rotated_nms_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor([[0.0, 0, 0, 4, 2, 1.5, 0], [0.3, 0, 0, 4, 2, 1.5, 0.1], [10, 0, 0, 4, 2, 1.5, 0]])
    keep = rotated_nms(boxes, torch.tensor([0.8, 0.9, 0.5]), iou_threshold=0.01)
    assert keep.tolist() == [1, 2]


def test_augmentations_keep_points_with_their_boxes():
    rng = np.random.default_rng(0)
    boxes = np.array([[10.0, 2.0, -0.9, 3.9, 1.6, 1.56, 0.4], [20.0, -5.0, -0.9, 0.8, 0.6, 1.7, -1.0]])
    inner = [np.column_stack([rng.uniform(-0.3, 0.3, (50, 3)) * b[3:6] + b[:3], rng.uniform(0, 1, 50)]) for b in boxes]
    pts = np.vstack(inner + [np.column_stack([rng.uniform(30, 40, (50, 3)), rng.uniform(0, 1, 50)])])
    before = points_in_boxes(pts, boxes)
    for _ in range(4):
        p2, b2 = random_flip_x(pts, boxes, rng)
        p2, b2 = random_rotation(p2, b2, [-0.785, 0.785], rng)
        p2, b2 = random_scaling(p2, b2, [0.95, 1.05], rng)
        np.testing.assert_array_equal(points_in_boxes(p2, b2), before)
    db = GTDatabase.build([{"points": pts, "gt_boxes": boxes, "gt_names": np.array(["Car", "Pedestrian"], dtype=object)}],
                          ["Car", "Pedestrian"], {"Car": 5, "Pedestrian": 5})
    assert len(db.boxes) == 2 and [len(p) for p in db.points] == [50, 50]
    empty = np.zeros((0, 4), dtype=np.float32)
    p3, b3, n3 = db.sample(empty, np.zeros((0, 7)), np.zeros(0, dtype=object), {"Car": 1, "Pedestrian": 1}, rng)
    assert len(b3) == 2 and sorted(n3) == ["Car", "Pedestrian"] and len(p3) == 100
    p4, b4, _ = db.sample(pts, boxes, np.array(["Car", "Pedestrian"], dtype=object), {"Car": 2}, rng)
    assert len(b4) == 2  # the only database car overlaps the scene's car: nothing is added
