"""The pipeline's task interface (``core.pipeline.Task``) for PointPillars on KITTI."""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from core.errors import CheckpointError, ConfigError

from .dataset import KittiFrames, collate, predictions_to_annos
from .kitti_eval import evaluate_kitti
from .kitti_io import frame_ids
from .model import PointPillars

__all__ = ["KittiTask", "OneCycleAdam", "PRIMARY_METRIC"]

PRIMARY_METRIC = "3d_iou05_R11_mAP_moderate"


class OneCycleAdam:
    """OpenPCDet's ``adam_onecycle``: AdamW with a one-cycle learning rate and beta1 schedule, stepped every iteration.

    ``run_pipeline`` steps schedulers once per epoch, so the per-iteration scheduler is kept
    here and this object stands in for it: ``step()`` does nothing, the state dict is the real one's.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, cfg: Mapping[str, Any]) -> None:
        moms = cfg.get("moms", [0.95, 0.85])
        self.inner = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg["lr"], total_steps=max(1, total_steps), pct_start=cfg.get("pct_start", 0.4),
            div_factor=cfg.get("div_factor", 10), anneal_strategy="cos", cycle_momentum=True,
            base_momentum=moms[1], max_momentum=moms[0])
        self.total_steps = max(1, total_steps)

    def step_iteration(self) -> None:
        if self.inner.last_epoch + 1 < self.total_steps:
            self.inner.step()

    def step(self) -> None:  # called by run_pipeline once per epoch
        pass

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.inner.load_state_dict(state)


class KittiTask:
    """Dense PointPillars (trained here or loaded), its training epochs and KITTI evaluation."""

    task = "pointpillars_kitti"
    model_name = "pointpillars"
    primary_metric = PRIMARY_METRIC

    def __init__(self, cfg: Mapping[str, Any], data_root: str | Path, progress: bool = False) -> None:
        self.cfg = copy.deepcopy(dict(cfg))
        self.data_root = Path(data_root)
        self.dataset_name = "kitti" if self.cfg["data"]["source"] == "kitti" else "synthetic-kitti"
        self.classes = list(self.cfg["classes"])
        self.progress = progress
        data = self.cfg["data"]
        mcfg = self.cfg["model"]
        self.train_set = KittiFrames(self.data_root, frame_ids(self.data_root, data["train_split"]), self.classes,
                                     mcfg["point_cloud_range"], training=True, augmentation=self.cfg.get("augmentation"),
                                     fov_points_only=data.get("fov_points_only", True), seed=int(self.cfg.get("seed", 0)))
        eval_ids = frame_ids(self.data_root, data["eval_split"])
        if data.get("max_eval_frames"):
            eval_ids = eval_ids[: int(data["max_eval_frames"])]
        self.eval_set = KittiFrames(self.data_root, eval_ids, self.classes, mcfg["point_cloud_range"], training=False,
                                    fov_points_only=data.get("fov_points_only", True))
        wanted = str(self.cfg.get("device", "auto"))
        self.device = torch.device("cuda" if wanted == "auto" and torch.cuda.is_available() else ("cpu" if wanted == "auto" else wanted))
        self._dense_state: dict[str, torch.Tensor] | None = None
        self._schedule: OneCycleAdam | None = None
        self.dense_history: list[float] = []

    def config(self) -> dict[str, Any]:
        return self.cfg

    @property
    def dense_state(self) -> dict[str, torch.Tensor] | None:
        """State dict of the dense model once built (trained here or loaded)."""
        return self._dense_state

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_set) / int(self.cfg["batch_size"]))

    def build_model(self) -> nn.Module:
        model = PointPillars(self.cfg["model"]).to(self.device)
        if self._dense_state is None:
            ckpt = self.cfg.get("dense_checkpoint")
            if ckpt:
                path = Path(ckpt)
                if not path.is_file():
                    raise CheckpointError(f"dense checkpoint {path} not found; set dense_checkpoint to a saved PointPillars state_dict or dense_epochs > 0")
                state = torch.load(path, map_location=self.device, weights_only=True)
                try:
                    model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
                except RuntimeError as err:
                    raise CheckpointError(f"{path} does not fit this PointPillars config ({str(err).splitlines()[0]}); use a checkpoint of the same model settings") from None
            elif int(self.cfg.get("dense_epochs", 0)) > 0:
                optimizer, _ = self.build_optimizer(model, "dense")
                for epoch in range(int(self.cfg["dense_epochs"])):
                    self.dense_history.append(self.train_one_epoch(model, optimizer, epoch, "dense"))
            else:
                raise ConfigError("no dense model: set dense_checkpoint to a trained PointPillars state_dict or dense_epochs > 0")
            self._dense_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self._dense_state)
        return model

    def build_optimizer(self, model: nn.Module, stage: str) -> tuple[torch.optim.Optimizer, Any]:
        opt = self.cfg["optimizer"]
        moms = opt.get("moms", [0.95, 0.85])
        optimizer = torch.optim.AdamW(model.parameters(), lr=opt["lr"], betas=(moms[0], 0.99), weight_decay=opt.get("weight_decay", 0.01))
        epochs = {"dense": self.cfg.get("dense_epochs", 0), "prune": self.cfg["epochs"], "retrain": self.cfg["retrain_epochs"]}[stage]
        self._schedule = OneCycleAdam(optimizer, int(epochs) * self.steps_per_epoch(), opt)
        return optimizer, self._schedule

    def train_one_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, stage: str) -> float:
        model.train()
        generator = torch.Generator().manual_seed(int(self.cfg.get("seed", 0)) * 1000 + epoch)
        loader = torch.utils.data.DataLoader(self.train_set, batch_size=int(self.cfg["batch_size"]), shuffle=True,
                                             collate_fn=collate, generator=generator, num_workers=0)
        clip = self.cfg["optimizer"].get("grad_norm_clip", 10)
        total, count = 0.0, 0
        for batch in loader:
            preds = model(model.voxelize([p.to(self.device) for p in batch["points"]]))
            loss, _ = model.loss(preds, batch["gt_boxes"].to(self.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            if self._schedule is not None:
                self._schedule.step_iteration()
            total += loss.item() * len(batch["points"])
            count += len(batch["points"])
        return total / max(count, 1)

    @torch.no_grad()
    def predict_annos(self, model: nn.Module) -> tuple[list[dict], list[dict]]:
        """Ground-truth and predicted annotation arrays of every evaluation frame."""
        model.eval()
        gts, dts = [], []
        for i in range(len(self.eval_set)):
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
        ev = self.cfg.get("evaluation", {})
        metrics = evaluate_kitti(gts, dts, self.classes, sampling=ev.get("recall_sampling", "devkit"),
                                 dontcare_all_metrics=ev.get("dontcare_all_metrics", True))
        metrics["num_detections"] = float(np.mean([len(d["name"]) for d in dts])) if dts else 0.0
        return metrics
