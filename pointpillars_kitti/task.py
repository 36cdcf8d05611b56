"""The pipeline's task interface (``core.harness.pipeline.Task``) for PointPillars on KITTI."""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from core.harness.config import settings_digest
from core.errors import CheckpointError, ConfigError
from core.harness.pipeline import seed_everything
from core.harness.results import atomic_torch_save, load_state, read_checkpoint

from .dataset import KittiFrames, collate, predictions_to_annos
from .kitti_eval import evaluate_kitti
from .kitti_io import frame_ids
from .model import PointPillars

__all__ = ["KittiTask", "OneCycleAdam", "PRIMARY_METRIC", "dense_cache_key"]

PRIMARY_METRIC = "3d_iou05_R11_mAP_moderate"
DENSE_SEED = 0  # the dense model is trained with its own fixed seed, so every run (and seed) of a grid shares it
STAGE_IDS = {"dense": 0, "prune": 1, "retrain": 2}


def dense_cache_key(cfg: Mapping[str, Any], data_root: str | Path | None = None) -> str:
    """A short hash of everything a dense model trained here depends on."""
    relevant = {k: cfg.get(k) for k in ("classes", "model", "data", "augmentation", "dense_epochs", "optimizer", "batch_size")}
    if data_root is not None:
        relevant["data_root"] = str(Path(data_root).resolve())
    return settings_digest(relevant)


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

    def __init__(self, cfg: Mapping[str, Any], data_root: str | Path, progress: bool = False, dense_dir: str | Path | None = None) -> None:
        self.cfg = copy.deepcopy(dict(cfg))
        self.data_root = Path(data_root)
        self.dense_dir = None if dense_dir is None else Path(dense_dir)
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
        self.dense_history: list[float] = []  # training losses when the dense model was trained in this process
        self.dense_source: str | None = None  # where the dense model came from: a checkpoint, the cache, or trained here

    def config(self) -> dict[str, Any]:
        return self.cfg

    @property
    def dense_state(self) -> dict[str, torch.Tensor] | None:
        """State dict of the dense model once built (trained here or loaded)."""
        return self._dense_state

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_set) / int(self.cfg["batch_size"]))

    def dense_path(self) -> Path | None:
        """The cache file of the dense model trained with these settings (None without a cache folder)."""
        if self.dense_dir is None:
            return None
        root = self.data_root if self.cfg["data"]["source"] == "kitti" else None  # generated scenes are defined by the settings
        return self.dense_dir / f"{self.model_name}_{self.dataset_name}_{dense_cache_key(self.cfg, root)}.pt"

    def _load_dense(self, model: nn.Module, path: Path, fix: str) -> None:
        state = read_checkpoint(path, "dense checkpoint", fix, weights_only=True)
        load_state(model, state.get("model", state) if isinstance(state, dict) else state, path, fix)

    def build_model(self) -> nn.Module:
        """The dense model: ``dense_checkpoint``; else the cached one trained with these settings; else trained here (and cached)."""
        model = PointPillars(self.cfg["model"]).to(self.device)
        if self._dense_state is None:
            ckpt = self.cfg.get("dense_checkpoint")
            cached = self.dense_path()
            if ckpt:
                path = Path(ckpt)
                if not path.is_file():
                    raise CheckpointError(f"dense checkpoint {path} not found; set dense_checkpoint to a saved PointPillars state_dict or dense_epochs > 0")
                self._load_dense(model, path, "use a checkpoint of the same model settings")
                self.dense_source = str(path)
            elif int(self.cfg.get("dense_epochs", 0)) > 0 and cached is not None and cached.is_file():
                self._load_dense(model, cached, f"delete the stale cache file {cached}")
                self.dense_source = f"{cached} (cached)"
            elif int(self.cfg.get("dense_epochs", 0)) > 0:
                seed_everything(DENSE_SEED)  # the same dense model whichever recipe asks first
                model = PointPillars(self.cfg["model"]).to(self.device)
                optimizer, _ = self.build_optimizer(model, "dense")
                for epoch in range(int(self.cfg["dense_epochs"])):
                    self.dense_history.append(self.train_one_epoch(model, optimizer, epoch, "dense", seed=DENSE_SEED))
                self.dense_source = "trained here"
                if cached is not None:
                    atomic_torch_save({"model": model.state_dict(), "metrics": self.evaluate(model), "losses": self.dense_history,
                                       "config": self.cfg}, cached)
                    self.dense_source = f"trained here, cached in {cached}"
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

    def train_one_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, stage: str, seed: int | None = None) -> float:
        """One epoch; the shuffle and the augmentation draws depend only on (seed, stage, epoch), so a resumed
        run and a run whose dense model came from the cache see the same batches as an uninterrupted one."""
        model.train()
        seed = int(self.cfg.get("seed", 0)) if seed is None else seed
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        self.train_set.rng = np.random.default_rng([seed, STAGE_IDS.get(stage, 3), epoch])
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
        metrics = evaluate_kitti(gts, dts, self.classes, sampling=ev.get("recall_sampling", "devkit"))
        metrics["num_detections"] = float(np.mean([len(d["name"]) for d in dts])) if dts else 0.0
        return metrics
