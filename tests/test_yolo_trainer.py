"""SLR/ADMM inside Ultralytics' trainer: the step order, masks on the model and its EMA copy,
offline runs, and pruned checkpoints that load back sparse."""
import socket
import tempfile
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from detection_yolo.ultralytics_env import prepare_ultralytics

prepare_ultralytics(tempfile.mkdtemp(prefix="yolo_cfg_"))  # before anything imports Ultralytics

from ultralytics.utils.torch_utils import ModelEMA  # noqa: E402

from core import Masks, build_pruner  # noqa: E402
from detection_yolo.trainer import MAX_GRAD_NORM, MaskedRetrainTrainer, PruneTrainer, StageSpec  # noqa: E402


def _fake_trainer(model, lr=1.0, momentum=0.0, ema=False):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    return SimpleNamespace(model=model, optimizer=optimizer, scaler=torch.amp.GradScaler("cuda", enabled=False),
                           ema=ModelEMA(model) if ema else None, before_clip=None, after_ema_update=None)


def _bind(fake, cls, **attrs):
    for k, v in attrs.items():
        setattr(fake, k, v)
    fake.before_clip = lambda: cls.before_clip(fake)
    fake.after_ema_update = lambda: cls.after_ema_update(fake)
    return lambda: cls.optimizer_step(fake)


def test_penalty_reaches_the_step_before_clipping():
    torch.manual_seed(0)
    model = nn.Linear(4, 3, bias=False)
    pruner = build_pruner("admm", model, {"prune_ratios": {"weight": 0.5}}, rho=0.1)
    w0, z = model.weight.detach().clone(), pruner.Z[0].clone()
    fake = _fake_trainer(model)
    step = _bind(fake, PruneTrainer, pruner=pruner)
    grad = torch.full_like(w0, 0.01)
    model.weight.grad = grad.clone()
    step()
    # ADMM with U = 0: W <- W - lr (g + rho (W - Z)), no clipping at this size
    assert torch.allclose(model.weight.detach(), w0 - (grad + 0.1 * (w0 - z)), atol=1e-6)
    assert model.weight.grad is None  # zero_grad(set_to_none) after the step


def test_clipping_sees_the_penalty_gradient():
    torch.manual_seed(0)
    model = nn.Linear(4, 3, bias=False)
    pruner = build_pruner("slr", model, {"prune_ratios": {"weight": 0.5}}, rho=0.1)
    pruner.dual[0].fill_(-1000.0)  # a huge multiplier: the penalty alone is far above the clip norm
    pruner._refresh_offset()
    w0, z = model.weight.detach().clone(), pruner.Z[0]
    fake = _fake_trainer(model)
    step = _bind(fake, PruneTrainer, pruner=pruner)
    model.weight.grad = torch.zeros_like(w0)
    step()
    total = torch.zeros_like(w0) + pruner.dual[0] + 0.1 * (w0 - z)  # Lambda + rho (W - Z)
    expected = w0 - total * (MAX_GRAD_NORM / total.norm())
    assert torch.allclose(model.weight.detach(), expected, atol=1e-4)


def test_masked_retrain_keeps_model_ema_and_momentum_at_zero():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    mask = torch.rand(5, 6) > 0.5
    with torch.no_grad():
        model[0].weight.mul_(mask)
    masks = Masks.from_state_dict(model, {"0.weight": mask})
    fake = _fake_trainer(model, lr=0.1, momentum=0.9, ema=True)
    masks.attach(fake.optimizer)
    step = _bind(fake, MaskedRetrainTrainer, masks=masks)
    for _ in range(5):
        model(torch.randn(8, 6)).square().mean().backward()
        step()
    assert torch.all(model[0].weight[~mask] == 0) and torch.all(model[0].weight[mask] != 0)
    assert torch.all(fake.ema.ema[0].weight[~mask] == 0) and fake.ema.updates == 5
    assert torch.all(fake.optimizer.state[model[0].weight]["momentum_buffer"][~mask] == 0)


def test_stage_spec_checks_its_stage():
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown stage"):
        StageSpec("finetune")
    with pytest.raises(ConfigError, match="needs a method"):
        StageSpec("prune")


@pytest.fixture
def no_network(monkeypatch):
    """Record and refuse every network attempt (DNS look-ups and connections)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


# an experiment's settings (core.harness.recipe's schema): Z and the multipliers every 2nd epoch, validation every 2nd
TINY_SETTINGS = {
    "table": "tiny", "profile": "smoke", "model": {"name": "yolov3-tiny", "width_multiple": 0.25},
    "data": {"name": "shapes", "n_train": 16, "n_val": 8, "imgsz": 64}, "device": "cpu", "threads": 0,
    "methods": ["slr"], "rates": [2.0], "seeds": [0], "batch_size": 8,
    "pruning": {"epochs": 4, "retrain_epochs": 1, "update_every": 2, "eval_every": 2, "rho": 0.1, "s0": 1.0e-4, "M": 200, "r": 0.1},
    "sparsity": {"include": ["model.*.conv.weight"], "exclude": ["model.0.conv.weight", "*.dfl.conv.weight"]},
    "optimizer": {"name": "SGD", "lr": 0.01},
    "train": {"imgsz": 64, "warmup_epochs": 0, "mosaic": 0.0, "close_mosaic": 0, "val": True, "plots": True},
    "dense": {"epochs": 1, "seed": 0},
}


def test_pipeline_offline_prunes_retrains_and_reloads_sparse(tmp_path, no_network, monkeypatch):
    from ultralytics import YOLO

    from core import compression_stats
    from core.harness.recipe import Experiment, expand_runs
    from core.harness.results import read_results
    from detection_yolo.pipeline import YoloData, prepare_data, run_experiment

    kept = []  # the pruner's state where the trainer keeps it: in weights/resume_e<epoch>.pt, beside each epoch's last.pt
    end_fit_epoch = PruneTrainer.end_fit_epoch

    def recording(self):
        kept.append(torch.load(self.wdir / f"resume_e{self.epoch}.pt", weights_only=False)["stage"]["pruner"])
        end_fit_epoch(self)

    monkeypatch.setattr(PruneTrainer, "end_fit_epoch", recording)
    runs = expand_runs(Experiment(None, "tiny", TINY_SETTINGS))
    data = YoloData(prepare_data(TINY_SETTINGS["data"], tmp_path, None), {"data": TINY_SETTINGS["data"]})
    results = run_experiment(TINY_SETTINGS, runs, tmp_path, data, tmp_path / "dense")
    assert no_network == []  # plots=True too: fonts come from the local config folder
    run_dir = tmp_path / "slr_2x_seed0"
    saved = read_results(run_dir / "results.json")
    assert saved["metrics"].keys() == {"dense", "after_training", "after_hard_pruning", "after_retraining"}
    assert saved["dataset"] == "shapes" and saved["model"] == "yolov3-tiny"
    assert sorted(p.name for p in (run_dir / "prune" / "weights").iterdir()) == ["last.pt", "masks.pt", "pruned.pt"]
    assert all(0 <= saved["metrics"][k]["mAP50"] <= 100 for k in saved["metrics"])
    assert [r["stage"] for r in saved["history"]] == ["prune"] * 4 + ["retrain"]
    # update_every 2: Z and the multipliers after epochs 2 and 4 only; eval_every 2: validation after epochs 2 and 4 only
    assert ["violation" in r for r in saved["history"][:4]] == [False, True, False, True] and len(saved["pruner_history"]) == 2
    assert [r["metrics"] is not None for r in saved["history"]] == [False, True, False, True, True]
    assert [(s["method"], s["update_every"], s["calls"], s["k"]) for s in kept] == [("slr", 2, c, c // 2) for c in (1, 2, 3, 4)]
    assert not (run_dir / "prune" / "pruner_state.pt").exists() and not list(run_dir.rglob("resume_e*.pt"))
    assert results[0]["achieved_compression"]["pruned_layers"] == pytest.approx(2.0, rel=1e-3)

    names = [row["name"] for row in saved["per_layer"]]
    masks = torch.load(run_dir / "prune" / "weights" / "masks.pt")
    for weights in ("prune/weights/pruned.pt", "retrain/weights/last.pt"):
        model = YOLO(str(run_dir / weights)).model
        assert compression_stats(model, names).pruned_layers_rate == pytest.approx(2.0, rel=1e-3)
        params = dict(model.named_parameters())
        assert all(torch.all(params[n][~m] == 0) for n, m in masks.items())  # the same entries stay pruned
    assert saved["config"]["recipe"]["update_every"] == 2 and saved["config"]["recipe"]["eval_every"] == 2


def test_trainer_restores_thread_count_and_one_backward_per_step(tmp_path):
    from detection_yolo.data import generate_shapes_dataset
    from detection_yolo.pipeline import train_args

    before = torch.get_num_threads()
    data = generate_shapes_dataset(tmp_path / "d", 2, 1, 32)
    args = train_args({"device": "cpu", "batch_size": 4, "optimizer": {"name": "SGD"}, "train": {"imgsz": 32}}, data, 0,
                      {"model": "yolov3-tiny.yaml", "epochs": 1, "project": str(tmp_path), "name": "t"})
    assert args["nbs"] == 4 and args["amp"] is False and args["workers"] == 0
    try:
        trainer = PruneTrainer(overrides=args, spec=StageSpec("prune", "slr", {"target_rate": 2.0}, threads=3))
        assert torch.get_num_threads() == 3  # Ultralytics' select_device() set its own count
        assert trainer.spec.method == "slr" and trainer.callbacks["slr_stage_spec"][0] is trainer.spec
    finally:
        torch.set_num_threads(before)


def test_prune_stage_on_real_coco128_images(data_root, tmp_path, no_network):
    from ultralytics import YOLO

    from core import compression_stats
    from detection_yolo.models import model_yaml
    from detection_yolo.pipeline import prepare_data, train_args

    if not (data_root / "coco128").is_dir():
        pytest.skip(f"{data_root / 'coco128'} is absent")
    data = prepare_data({"name": "coco128"}, tmp_path, data_root / "coco128")
    config = {"device": "cpu", "batch_size": 8, "optimizer": {"name": "SGD"},
              "train": {"imgsz": 64, "warmup_epochs": 0, "mosaic": 0.0, "close_mosaic": 0, "plots": False, "fraction": 0.0625}}
    args = train_args(config, data, 0, {"model": str(model_yaml("yolov3-tiny", tmp_path, 0.25)), "epochs": 1,
                                        "project": str(tmp_path), "name": "prune"})
    spec = StageSpec("prune", "admm", {"target_rate": 3.0, "include": ["model.*.conv.weight"],
                                       "exclude": ["model.0.conv.weight", "*.dfl.conv.weight"]})
    trainer = PruneTrainer(overrides=args, spec=spec)
    trainer.train()
    assert no_network == []
    assert trainer.summary["metrics"]["after_hard_pruning"]["mAP50"] >= 0
    model = YOLO(str(tmp_path / "prune" / "weights" / "pruned.pt")).model
    assert len(model.names) == 80 and model.names[0] == "person"
    assert compression_stats(model, trainer.summary["pruned_layers"]).pruned_layers_rate == pytest.approx(3.0, rel=1e-3)


def test_penalty_is_added_to_unscaled_gradients_under_amp_scaling():
    torch.manual_seed(0)
    model = nn.Linear(4, 3, bias=False)
    pruner = build_pruner("admm", model, {"prune_ratios": {"weight": 0.5}}, rho=0.1)
    w0, z = model.weight.detach().clone(), pruner.Z[0].clone()
    fake = _fake_trainer(model, lr=0.1)
    fake.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)  # a real loss scale, as AMP on a GPU uses
    step = _bind(fake, PruneTrainer, pruner=pruner)
    x = torch.randn(5, 4)
    fake.scaler.scale(model(x).sum() * 1e-3).backward()
    grad = x.sum(0).expand(3, 4) * 1e-3  # d/dW of sum(W x) * 1e-3, unscaled
    step()
    assert torch.allclose(model.weight.detach(), w0 - 0.1 * (grad + 0.1 * (w0 - z)), atol=1e-6)


def test_amp_check_runs_only_with_its_model_on_disk(tmp_path, monkeypatch):
    import ultralytics.utils

    from detection_yolo.trainer import _offline_check_amp

    calls = []
    check = _offline_check_amp(lambda model: calls.append(model) or False)
    monkeypatch.setattr(ultralytics.utils, "WEIGHTS_DIR", tmp_path)
    assert check("m") is True and calls == []  # no reference model: no download, AMP kept
    (tmp_path / "yolo26n.pt").write_bytes(b"")
    assert check("m") is False and calls == ["m"]
