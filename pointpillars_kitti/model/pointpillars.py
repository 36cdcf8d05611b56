"""The PointPillars detector: pillar features, BEV scatter, 2D backbone, anchor head; losses and decoding."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..voxelizer import Voxelizer, grid_size
from .anchors import make_anchors
from .backbone import BEVBackbone
from .box_coder import decode_boxes
from .head import AnchorHead
from .losses import direction_targets, sigmoid_focal_loss, sin_difference, weighted_smooth_l1
from .nms import rotated_nms
from .pillar_vfe import PillarVFE
from .scatter import PillarScatter
from .target_assigner import assign_targets

__all__ = ["PointPillars", "build_pointpillars", "scaled"]


def scaled(channels: Sequence[int] | int, width: float):
    """Channel counts times ``width`` (at least 4 each); the smoke profile's narrow model."""
    if isinstance(channels, int):
        return max(4, int(round(channels * width)))
    return [max(4, int(round(c * width))) for c in channels]


class PointPillars(nn.Module):
    """PointPillars with one anchor head for all classes (``AnchorHeadSingle``)."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        self.cfg = dict(cfg)
        width = float(cfg.get("width", 1.0))
        pc_range, voxel = cfg["point_cloud_range"], cfg["voxel_size"]
        self.grid = grid_size(pc_range, voxel)
        self.class_names = [a["class_name"] for a in cfg["anchors"]]
        bn_momentum = float(cfg.get("bn_momentum", 0.01))
        self.vfe = PillarVFE(voxel, pc_range, scaled(cfg["vfe_filters"], width), num_point_features=cfg.get("num_point_features", 4),
                             bn_momentum=bn_momentum)
        self.scatter = PillarScatter(self.vfe.out_channels, (self.grid[0], self.grid[1]))
        bb = cfg["backbone"]
        self.backbone = BEVBackbone(self.vfe.out_channels, bb["layer_nums"], bb["layer_strides"], scaled(bb["num_filters"], width),
                                    bb["upsample_strides"], scaled(bb["num_upsample_filters"], width), bn_momentum)
        stride = cfg["anchors"][0]["feature_map_stride"]
        feature_xy = (self.grid[0] // stride, self.grid[1] // stride)
        anchors, anchor_classes = make_anchors(pc_range, feature_xy, cfg["anchors"])
        self.register_buffer("anchors", anchors.reshape(-1, 7), persistent=False)
        self.register_buffer("anchor_classes", anchor_classes.repeat(feature_xy[0] * feature_xy[1]), persistent=False)
        self.num_anchors_per_cell = anchors.shape[2]
        self.head = AnchorHead(self.backbone.out_channels, self.num_anchors_per_cell, len(self.class_names), cfg.get("num_dir_bins", 2))
        self.voxelizers = {split: Voxelizer(voxel, pc_range, cfg["max_points_per_voxel"], cfg["max_voxels"][split]) for split in ("train", "test")}

    def voxelize(self, points_list: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Pillars of a batch of point clouds: voxels, (batch, z, y, x) coords, point counts."""
        vox = self.voxelizers["train" if self.training else "test"]
        voxels, coords, counts = [], [], []
        for b, pts in enumerate(points_list):
            v, c, n = vox(pts)
            voxels.append(v)
            coords.append(torch.cat([torch.full((len(c), 1), b, dtype=c.dtype, device=c.device), c], dim=1))
            counts.append(n)
        return {"voxels": torch.cat(voxels), "voxel_coords": torch.cat(coords), "voxel_num_points": torch.cat(counts), "batch_size": len(points_list)}

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        features = self.vfe(batch["voxels"], batch["voxel_num_points"], batch["voxel_coords"])
        bev = self.scatter(features, batch["voxel_coords"], batch["batch_size"])
        return self.head(self.backbone(bev))

    def loss(self, preds: Mapping[str, torch.Tensor], gt_boxes: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Focal + 2 x smooth-L1 + 0.2 x direction loss (weights from the config), summed over anchors, averaged over frames.

        ``gt_boxes`` is (B, M, 8): lidar box and 1-based class, zero rows as padding.
        """
        cfg = self.cfg
        lw = cfg["loss_weights"]
        batch_size = gt_boxes.shape[0]
        labels, targets = [], []
        matched = [a["matched_threshold"] for a in cfg["anchors"]]
        unmatched = [a["unmatched_threshold"] for a in cfg["anchors"]]
        for b in range(batch_size):
            l, t = assign_targets(self.anchors, self.anchor_classes, gt_boxes[b], matched, unmatched)
            labels.append(l)
            targets.append(t)
        labels, targets = torch.stack(labels), torch.stack(targets)
        positives = (labels > 0).float()
        negatives = (labels == 0).float()
        normalizer = positives.sum(1, keepdim=True).clamp(min=1.0)
        cls_weights = (positives + negatives) / normalizer
        reg_weights = positives / normalizer
        one_hot = torch.zeros(*labels.shape, len(self.class_names) + 1, device=labels.device)
        one_hot.scatter_(-1, labels.clamp(min=0).unsqueeze(-1), 1.0)
        one_hot = one_hot[..., 1:]
        cls_loss = sigmoid_focal_loss(preds["cls_preds"], one_hot, cls_weights, cfg["focal_alpha"], cfg["focal_gamma"]).sum() / batch_size
        box_pred, box_target = sin_difference(preds["box_preds"], targets)
        loc_loss = weighted_smooth_l1(box_pred, box_target, reg_weights, lw["code_weights"]).sum() / batch_size
        dir_t = direction_targets(self.anchors.unsqueeze(0), targets, cfg["dir_offset"], cfg.get("num_dir_bins", 2))
        dir_ce = nn.functional.cross_entropy(preds["dir_preds"].reshape(-1, preds["dir_preds"].shape[-1]), dir_t.reshape(-1), reduction="none")
        dir_loss = (dir_ce.view_as(reg_weights) * reg_weights).sum() / batch_size
        total = lw["cls_weight"] * cls_loss + lw["loc_weight"] * loc_loss + lw["dir_weight"] * dir_loss
        # training accuracy: positive anchors whose highest class score is their assigned class
        hits = ((preds["cls_preds"].detach().argmax(-1) + 1 == labels) & (labels > 0)).sum()
        return total, {"cls": cls_loss.item(), "loc": loc_loss.item(), "dir": dir_loss.item(), "num_pos": (positives.sum() / batch_size).item(),
                       "positives_correct": hits, "positives": positives.sum()}

    def decode(self, preds: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, N, 7) lidar boxes: residual decoding, heading resolved by the direction bin."""
        boxes = decode_boxes(preds["box_preds"], self.anchors.unsqueeze(0))
        bins = self.cfg.get("num_dir_bins", 2)
        period = 2 * math.pi / bins
        dir_label = preds["dir_preds"].argmax(-1).to(boxes.dtype)
        offset, limit = self.cfg["dir_offset"], self.cfg.get("dir_limit_offset", 0.0)
        rot = boxes[..., 6] - offset
        rot = rot - torch.floor(rot / period + limit) * period
        heading = rot + offset + period * dir_label
        return torch.cat([boxes[..., :6], heading.unsqueeze(-1)], dim=-1)

    @torch.no_grad()
    def predict(self, preds: Mapping[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Per frame: boxes (K, 7), scores (K,), labels (K,, 1-based) after score threshold and NMS."""
        post = self.cfg["post_processing"]
        boxes = self.decode(preds)
        scores_all = torch.sigmoid(preds["cls_preds"])
        out = []
        for b in range(boxes.shape[0]):
            scores, labels = scores_all[b].max(dim=-1)
            keep = scores > post["score_thresh"]
            bx, sc, lb = boxes[b][keep], scores[keep], labels[keep] + 1
            idx = rotated_nms(bx, sc, post["nms_thresh"], post["nms_pre_max"], post["nms_post_max"])
            out.append({"boxes": bx[idx], "scores": sc[idx], "labels": lb[idx]})
        return out


def build_pointpillars(cfg: Mapping[str, Any]) -> PointPillars:
    return PointPillars(cfg)
