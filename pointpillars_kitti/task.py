"""The pipeline's task (core.harness.task.PipelineTask) for PointPillars on KITTI."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from core.harness.task import BatchResult, PerIteration, PipelineTask, load_weights

from .dataset import KittiFrames, collate, predictions_to_annos
from .kitti_eval import evaluate_kitti
from .kitti_io import frame_ids
from .model import PointPillars

__all__ = ["KittiTask", "KittiData", "load_kitti_data", "one_cycle", "PRIMARY_METRIC"]

PRIMARY_METRIC = "3d_iou05_R11_mAP_moderate"
STAGE_IDS = {"dense": 0, "prune": 1, "retrain": 2}


@dataclass
class KittiData:
    """The training and evaluation frames of one KITTI folder (real or generated)."""

    root: Path
    name: str  # kitti or synthetic-kitti
    train: KittiFrames
    eval: KittiFrames


def load_kitti_data(settings: Mapping[str, Any], root: Path) -> KittiData:
    """The frames of ``settings['data']`` under the KITTI object folder ``root``."""
    data, model = settings["data"], settings["model"]
    classes = list(settings["classes"])
    train = KittiFrames(root, frame_ids(root, data["train_split"]), classes, model["point_cloud_range"], training=True,
                        augmentation=settings.get("augmentation"), fov_points_only=data.get("fov_points_only", True), seed=0)
    eval_ids = frame_ids(root, data["eval_split"])
    if data.get("max_eval_frames"):
        eval_ids = eval_ids[: int(data["max_eval_frames"])]
    evaluation = KittiFrames(root, eval_ids, classes, model["point_cloud_range"], training=False,
                             fov_points_only=data.get("fov_points_only", True))
    return KittiData(Path(root), "kitti" if data["source"] == "kitti" else "synthetic-kitti", train, evaluation)


def one_cycle(optimizer: torch.optim.Optimizer, total_steps: int, cfg: Mapping[str, Any]) -> PerIteration:
    """OpenPCDet's ``adam_onecycle`` schedule: a one-cycle learning rate and beta1, stepped every iteration."""
    moms = cfg.get("moms", [0.95, 0.85])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg["lr"], total_steps=max(1, total_steps), pct_start=cfg.get("pct_start", 0.4),
        div_factor=cfg.get("div_factor", 10), anneal_strategy="cos", cycle_momentum=True,
        base_momentum=moms[1], max_momentum=moms[0])
    return PerIteration(scheduler, total_steps)


class KittiTask(PipelineTask):
    """PointPillars (OpenPCDet's pointpillar.yaml) trained with AdamW one-cycle, evaluated with KITTI AP."""

    task = "pointpillars_kitti"
    model_name = "pointpillars"
    primary_metric = PRIMARY_METRIC
    # a dense model trained here depends on these settings (its cache file is named by their digest)
    dense_keys = ("classes", "model", "data", "augmentation", "dense", "optimizer", "batch_size")

    def __init__(self, settings: Mapping[str, Any], data: KittiData, device: str | torch.device = "cpu", progress: bool = False) -> None:
        self.settings = copy.deepcopy(dict(settings))
        self.data = data
        self.dataset_name = data.name
        self.classes = list(self.settings["classes"])
        self.train_set, self.eval_set = data.train, data.eval
        self.device = torch.device(device)
        self.progress = progress
        self.grad_clip = float(self.settings["optimizer"].get("grad_norm_clip", 10))

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_set) / int(self.settings["batch_size"]))

    def new_model(self) -> nn.Module:
        return PointPillars(self.settings["model"]).to(self.device)

    def load_dense(self, model: nn.Module, path: Path) -> None:
        load_weights(model, path, "use a checkpoint of the same model settings (a PointPillars state_dict of this project)")

    def build_optimizer(self, model: nn.Module, stage: str) -> tuple[torch.optim.Optimizer, PerIteration]:
        opt = self.settings["optimizer"]
        moms = opt.get("moms", [0.95, 0.85])
        optimizer = torch.optim.AdamW(model.parameters(), lr=opt["lr"], betas=(moms[0], 0.99), weight_decay=opt.get("weight_decay", 0.01))
        pruning = self.settings["pruning"]
        epochs = {"dense": self.settings["dense"].get("epochs", 0), "prune": pruning["epochs"], "retrain": pruning["retrain_epochs"]}[stage]
        return optimizer, one_cycle(optimizer, int(epochs) * self.steps_per_epoch(), opt)

    def train_batches(self, stage: str, epoch: int, seed: int) -> torch.utils.data.DataLoader:
        """One epoch; the shuffle and the augmentation draws depend only on (seed, stage, epoch), so a resumed
        run and a run whose dense model came from the cache see the same batches as an uninterrupted one."""
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        self.train_set.rng = np.random.default_rng([seed, STAGE_IDS.get(stage, 3), epoch])
        return torch.utils.data.DataLoader(self.train_set, batch_size=int(self.settings["batch_size"]), shuffle=True,
                                           collate_fn=collate, generator=generator, num_workers=0)

    def batch_loss(self, net: nn.Module, batch) -> BatchResult:
        """OpenPCDet's PointPillars loss; the training accuracy counts the positive anchors whose
        highest class score is their assigned class."""
        preds = net(net.voxelize([p.to(self.device) for p in batch["points"]]))
        loss, parts = net.loss(preds, batch["gt_boxes"].to(self.device))
        return BatchResult(loss, len(batch["points"]), parts["positives_correct"], parts["positives"])

    @torch.no_grad()
    def predict_annos(self, model: nn.Module) -> tuple[list[dict], list[dict]]:
        """Ground-truth and predicted annotation arrays of every evaluation frame."""
        model.eval()
        gts, dts = [], []
        frames = len(self.eval_set) if self.max_batches is None else min(len(self.eval_set), self.max_batches)
        for i in range(frames):
            frame = self.eval_set.frame(i)
            sample = self.eval_set[i]
            pred = model.predict(model(model.voxelize([sample["points"].to(self.device)])))[0]
            pred = {k: v.cpu().numpy() for k, v in pred.items()}
            dts.append(predictions_to_annos(pred["boxes"], pred["scores"], pred["labels"], self.classes,
                                            frame["calib"], frame["image_size"]))
            gts.append(frame["annos"])
        return gts, dts

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        gts, dts = self.predict_annos(model)
        ev = self.settings.get("evaluation", {})
        metrics = evaluate_kitti(gts, dts, self.classes, sampling=ev.get("recall_sampling", "devkit"))
        metrics["num_detections"] = float(np.mean([len(d["name"]) for d in dts])) if dts else 0.0
        return metrics
