"""detection_yolo resumes in the middle of a stage (Ultralytics' resume plus the exact state
beside last.pt) to the numbers of an uninterrupted run, bit for bit on the CPU: a real
``python -m detection_yolo`` killed with SIGKILL inside its SLR stage, and a stage stopped after
its last epoch but before hard-pruning (in process)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from detection_yolo.ultralytics_env import prepare_ultralytics

prepare_ultralytics(tempfile.mkdtemp(prefix="yolo_cfg_"))  # before anything imports Ultralytics

from ultralytics import YOLO  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUN = "yolov3-tiny_2x/slr_2x_seed0"
# tiny YOLOv3 on 16 generated images; mosaic on, so that the restored mosaic buffer matters too
CLI = ["-m", "detection_yolo", "--profile", "smoke", "--method", "slr", "--no-progress", "--experiment", "yolov3-tiny_2x",
       *sum((["--set", s] for s in ("data.n_train=16", "data.n_val=8", "data.imgsz=64", "train.imgsz=64", "batch_size=8",
                                     "train.mosaic=1.0", "dense.yolov3-tiny.epochs=1", "model.width_multiple=0.25",
                                     "pruning.epochs=3", "pruning.retrain_epochs=1")), [])]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _results(run_dir: Path) -> dict:
    data = json.loads((run_dir / "results.json").read_text())
    return {k: data[k] for k in ("metrics", "history", "pruner_history", "per_layer", "achieved_compression")}


def _weights(path: Path) -> dict:
    return YOLO(str(path)).model.state_dict()


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), (a, name)


def test_sigkill_inside_the_slr_stage_then_resume_equals_uninterrupted(tmp_path, sigkill_once_written):
    full = subprocess.run([sys.executable, *CLI, "--out", str(tmp_path / "full")], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-3000:]

    killed = tmp_path / "killed"
    weights = killed / RUN / "prune" / "weights"
    code = sigkill_once_written([sys.executable, *CLI, "--out", str(killed)], weights / "last.pt", cwd=ROOT, env=ENV)
    assert code == -signal.SIGKILL
    assert (weights / "resume_e0.pt").is_file() and not (weights / "pruned.pt").exists()  # stopped after SLR epoch 0 of 3
    assert not (killed / RUN / "results.json").exists()

    resumed = subprocess.run([sys.executable, *CLI, "--out", str(killed), "--resume"], cwd=ROOT, env=ENV,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _results(killed / RUN) == _results(tmp_path / "full" / RUN)
    for weights_file in ("prune/weights/pruned.pt", "retrain/weights/last.pt"):
        _assert_same_weights(killed / RUN / weights_file, tmp_path / "full" / RUN / weights_file)
    assert not list(weights.glob("resume_e*.pt"))  # removed once the stage finished


def test_stop_after_the_last_epoch_resumes_to_hard_pruning(tmp_path, one_torch_thread):
    from detection_yolo.data import generate_shapes_dataset
    from detection_yolo.models import model_yaml
    from detection_yolo.pipeline import train_args
    from detection_yolo.trainer import PruneTrainer, StageSpec, resume_overrides

    data = generate_shapes_dataset(tmp_path / "data", 8, 4, 64)
    config = {"device": "cpu", "batch_size": 4, "optimizer": {"name": "SGD"},
              "train": {"imgsz": 64, "warmup_epochs": 0, "mosaic": 0.0, "close_mosaic": 0, "plots": False, "val": True}}
    spec = StageSpec("prune", "admm", {"target_rate": 2.0, "include": ["model.*.conv.weight"],
                                       "exclude": ["model.0.conv.weight", "*.dfl.conv.weight"]})
    model = str(model_yaml("yolov3-tiny", tmp_path, 0.25))

    class Stop(Exception):
        pass

    def stop(trainer):  # after last.pt of the final epoch, before the closing work
        raise Stop

    def trainer(name, **extra):
        args = train_args(config, data, 0, {"model": model, "epochs": 2, "project": str(tmp_path), "name": name, **extra})
        return PruneTrainer(overrides=args, spec=spec)

    trainer("full").train()
    stopped = trainer("stopped")
    stopped.add_callback("on_fit_epoch_end", lambda t: t.epoch == 1 and stop(t))
    with pytest.raises(Stop):
        stopped.train()
    assert resume_overrides(tmp_path / "stopped") == {"resume": str(tmp_path / "stopped" / "weights" / "last.pt")}
    assert not (tmp_path / "stopped" / "weights" / "pruned.pt").exists()
    trainer("stopped", **resume_overrides(tmp_path / "stopped")).train()

    full, resumed = (json.loads((tmp_path / d / "stage.json").read_text()) for d in ("full", "stopped"))
    for key in ("history", "metrics", "pruner_history", "compression"):
        assert resumed[key] == full[key], key
    _assert_same_weights(tmp_path / "stopped" / "weights" / "pruned.pt", tmp_path / "full" / "weights" / "pruned.pt")
    assert resume_overrides(tmp_path / "stopped") == {}  # a finished stage's last.pt is stripped: nothing to resume
