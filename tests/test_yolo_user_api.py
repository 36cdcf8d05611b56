"""The trainers as an Ultralytics user calls them: ``YOLO(...).train(trainer=..., ...)``, with the
pruning configured through the ``prune=`` option or ``PruneTrainer.configured(...)``; the model
the user holds afterwards is the pruned one, and masked fine-tuning keeps its zeros."""
import fnmatch
import tempfile

import pytest
import torch

from detection_yolo.ultralytics_env import prepare_ultralytics

prepare_ultralytics(tempfile.mkdtemp(prefix="yolo_cfg_"))  # before anything imports Ultralytics

from ultralytics import YOLO  # noqa: E402

from core.errors import ConfigError  # noqa: E402
from detection_yolo.data import generate_shapes_dataset  # noqa: E402
from detection_yolo.layers import head_index  # noqa: E402
from detection_yolo.trainer import DenseTrainer, MaskedRetrainTrainer, PruneTrainer  # noqa: E402


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return generate_shapes_dataset(tmp_path_factory.mktemp("shapes"), n_train=8, n_val=4, imgsz=64)


def _args(data, project, name):
    """What a user passes to train(): tiny, CPU, one epoch."""
    return dict(data=str(data), imgsz=64, batch=4, epochs=1, device="cpu", workers=0, optimizer="SGD", lr0=0.01,
                warmup_epochs=0, mosaic=0.0, amp=False, plots=False, verbose=False, project=str(project), name=name,
                exist_ok=True)


def _default_layers(model):
    """Every Conv block's convolution except the first and the detection head's, counted by hand."""
    head = f"model.{head_index(model)}."
    return [n for n, p in model.named_parameters()
            if fnmatch.fnmatchcase(n, "model.*.conv.weight") and n != "model.0.conv.weight" and not n.startswith(head)]


def _rate(model, names):
    params = dict(model.named_parameters())
    total = sum(params[n].numel() for n in names)
    return total / sum(int((params[n] != 0).sum()) for n in names)


def test_yolov3_tiny_prune_option_then_masked_finetune_keeps_the_rate(shapes, tmp_path):
    model = YOLO("yolov3-tiny.yaml")
    model.train(trainer=PruneTrainer, prune={"method": "slr", "rate": 2.0}, **_args(shapes, tmp_path, "prune"))
    trainer = model.trainer
    names = _default_layers(model.model)
    assert sorted(trainer.summary["pruned_layers"]) == sorted(names) and len(names) == 10
    assert trainer.best.name == "pruned.pt" and trainer.best.is_file()
    assert _rate(model.model, names) == pytest.approx(2.0, rel=1e-3)  # the object the user holds
    weights = sorted(p.name for p in (tmp_path / "prune" / "weights").iterdir())
    assert weights == ["last.pt", "masks.pt", "pruned.pt"]  # no dense best.pt
    assert torch.load(trainer.best, weights_only=False)["optimizer"] is None  # stripped
    zeros = {n: (p == 0) for n, p in model.model.named_parameters() if n in names}

    model.train(trainer=MaskedRetrainTrainer, **_args(shapes, tmp_path, "finetune"))
    assert _rate(model.model, names) == pytest.approx(2.0, rel=1e-3)
    params = dict(model.model.named_parameters())
    assert all(torch.all(params[n][z] == 0) for n, z in zeros.items())  # the very same entries
    assert YOLO(str(tmp_path / "finetune" / "weights" / "last.pt")).model is not None
    assert _rate(YOLO(str(tmp_path / "finetune" / "weights" / "last.pt")).model, names) == pytest.approx(2.0, rel=1e-3)

    model.train(**_args(shapes, tmp_path, "plain"))  # Ultralytics' own trainer: what the README warns about
    assert _rate(model.model, names) < 1.1  # 1.005x measured: nearly every zero regrows in one epoch


def test_yolov8n_from_scratch_configured_trainer(shapes, tmp_path):
    model = YOLO("yolov8n.yaml")
    model.train(trainer=PruneTrainer.configured(method="admm", rate=3.0), **_args(shapes, tmp_path, "prune"))
    names = _default_layers(model.model)
    assert sorted(model.trainer.summary["pruned_layers"]) == sorted(names) and len(names) == 44
    assert not any(n.startswith(("model.0.", "model.22.")) for n in names)  # first conv and Detect head dense
    assert _rate(model.model, names) == pytest.approx(3.0, rel=1e-3)
    assert model.trainer.summary["compression"]["pruned_layers"] == pytest.approx(3.0, rel=1e-3)


def test_trainer_configuration_errors(shapes, tmp_path):
    args = {**_args(shapes, tmp_path, "x"), "model": "yolov3-tiny.yaml"}
    with pytest.raises(ConfigError, match=r"PruneTrainer needs its pruning options: train\(trainer=PruneTrainer, prune="):
        PruneTrainer(overrides=args)
    with pytest.raises(ConfigError, match=r"unknown prune option\(s\) \['ratio'\]"):
        PruneTrainer(overrides={**args, "prune": {"ratio": 2.0}})
    with pytest.raises(ConfigError, match="prune options need a target compression rate"):
        PruneTrainer.configured(method="slr")
    with pytest.raises(ConfigError, match="unknown pruning method 'slr2'"):
        PruneTrainer.configured(method="slr2", rate=2.0)
    with pytest.raises(ConfigError, match="DenseTrainer takes no 'prune' options"):
        DenseTrainer(overrides={**args, "prune": {"rate": 2.0}})
    configured = PruneTrainer.configured(method="admm", rate=4.0, rho=0.5)
    assert issubclass(configured, PruneTrainer) and configured.default_spec.pruner_settings == {"rho": 0.5}
    with pytest.raises(ConfigError, match=r"unknown prune option\(s\) \['s0'\]; admm takes .*rho, amplify, update_every, eval_every"):
        PruneTrainer.configured(method="admm", rate=2.0, s0=1e-4)  # an SLR hyperparameter
    scheduled = PruneTrainer.configured(method="slr", rate=2.0, M=300, update_every=2, eval_every=3).default_spec
    assert scheduled.pruner_settings == {"M": 300.0, "update_every": 2} and scheduled.eval_every == 3
    with pytest.raises(ConfigError, match="prune option update_every = 0 must be a positive integer"):
        PruneTrainer.configured(method="slr", rate=2.0, update_every=0)
    assert configured.default_spec.sparsity["exclude"] == ["model.0.conv.weight", "model.{head}.*"]
