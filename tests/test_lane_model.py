"""UFLD model, losses and checkpoint loading (lane_tusimple.model, .losses)."""
import math

import pytest
import torch

from core.errors import CheckpointError
from lane_tusimple.losses import UFLDLoss, shape_loss, similarity_loss, softmax_focal_loss
from lane_tusimple.model import UFLD, UFLDConfig, load_ufld_checkpoint

TINY = dict(input_size=(64, 160), width=4, fc_hidden=16)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_published_design_sizes():
    model = UFLD()  # ResNet-18, 288x800, 100 cells + no-lane, 56 anchors, 4 lanes
    assert model.pooled_dim == 8 * 9 * 25 == 1800
    assert model.cls[0].in_features == 1800 and model.cls[0].out_features == 2048
    assert model.cls[2].out_features == 101 * 56 * 4
    assert model.backbone.layer4[1].conv2.out_channels == 512
    assert model.aux_combine[-1].out_channels == 5
    assert type(model.backbone).__module__ == "torchvision.models.resnet"
    model.train()
    logits, seg = model(torch.zeros(1, 3, 288, 800))
    assert logits.shape == (1, 101, 56, 4) and seg.shape == (1, 5, 36, 100)
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 288, 800)).shape == (1, 101, 56, 4)  # no auxiliary branch at inference


def test_narrow_model_keeps_resnet18_parameter_names():
    narrow = UFLD(UFLDConfig(**TINY))
    full_names = {n for n, _ in UFLD(UFLDConfig(input_size=(64, 160), fc_hidden=16)).named_parameters()}
    assert {n for n, _ in narrow.named_parameters()} == full_names
    assert narrow.backbone.layer4[1].conv2.out_channels == 32
    with pytest.raises(ValueError):
        UFLD(UFLDConfig(input_size=(100, 160), width=4))


def test_focal_loss_by_hand():
    logits = torch.zeros(1, 2, 1, 1)  # p = 0.5 for both classes
    target = torch.zeros(1, 1, 1, dtype=torch.long)
    assert softmax_focal_loss(logits, target, gamma=2.0).item() == pytest.approx(0.25 * math.log(2))
    logits = torch.tensor([[[[2.0]], [[0.0]], [[-1.0]]]])
    assert softmax_focal_loss(logits, target, gamma=0.0).item() == pytest.approx(torch.nn.functional.cross_entropy(logits, target).item())


def test_similarity_loss_by_hand():
    same_rows = torch.ones(2, 5, 4, 3)
    assert similarity_loss(same_rows).item() == 0.0
    rows = torch.arange(4, dtype=torch.float32).view(1, 1, 4, 1).expand(2, 5, 4, 3) * 0.5  # adjacent rows differ by 0.5
    assert similarity_loss(rows).item() == pytest.approx(0.5 * 0.5 ** 2)  # smooth L1 below 1: x^2 / 2


def test_shape_loss_by_hand():
    cells, rows = 81, 8
    logits = torch.full((1, cells + 1, rows, 1), -50.0)
    for i in range(rows):  # expected position i^2: second difference 2 everywhere
        logits[0, i * i, i, 0] = 50.0
    assert shape_loss(logits).item() == pytest.approx(2.0, abs=1e-4)
    straight = torch.full((1, cells + 1, rows, 1), -50.0)
    for i in range(rows):
        straight[0, 3 * i, i, 0] = 50.0
    assert shape_loss(straight).item() == pytest.approx(0.0, abs=1e-4)


def test_total_loss_trains_a_tiny_model():
    torch.manual_seed(0)
    model = UFLD(UFLDConfig(**TINY))
    images = torch.randn(4, 3, 64, 160)
    cls_target = torch.randint(0, 101, (4, 56, 4))
    seg_target = torch.randint(0, 5, (4, 8, 20))
    loss_fn = UFLDLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(8):
        loss = loss_fn(model(images), cls_target, seg_target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_loads_ufld_code_base_checkpoints(tmp_path):
    source = UFLD(UFLDConfig(**TINY))
    state = {("model.model." + k[len("backbone."):] if k.startswith("backbone.") else k): v for k, v in source.state_dict().items()}
    torch.save({"model": state}, tmp_path / "ufld.pth")
    target = UFLD(UFLDConfig(**TINY))
    load_ufld_checkpoint(target, tmp_path / "ufld.pth")
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(CheckpointError, match="does not fit"):
        load_ufld_checkpoint(UFLD(UFLDConfig(input_size=(64, 160), width=8, fc_hidden=16)), tmp_path / "ufld.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_ufld_checkpoint(target, tmp_path / "missing.pth")
