"""Masked retraining keeps zeros; stopped-and-resumed runs equal uninterrupted ones bit for bit."""
import copy
import io

import pytest
import torch
from torch import nn

from core import SLR, ADMM, CheckpointError, Masks, build_pruner


def conv_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


CONFIG = {"prune_ratios": {"0.weight": 0.7, "3.weight": 0.9}}
BATCH = (torch.randn(32, 3, 6, 6, generator=torch.Generator().manual_seed(0)), torch.randint(0, 10, (32,), generator=torch.Generator().manual_seed(1)))


def step(model, optimizer):
    x, y = BATCH
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


OPTIMIZERS = {
    "sgd-momentum-wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-4),
    "adam-wd": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=5e-4),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_masks_survive_50_steps(name):
    model = conv_model()
    optimizer = OPTIMIZERS[name](model.parameters())
    for _ in range(3):  # build up momentum / Adam moments on every weight first
        step(model, optimizer)
    masks = SLR(model, CONFIG).hard_prune()
    zeros = [~m for m in masks.masks]
    masks.attach(optimizer)
    for _ in range(50):
        step(model, optimizer)
    for p, z in zip(masks.params, zeros):
        assert int(z.sum()) > 0 and torch.count_nonzero(p.detach()[z]) == 0
        for value in optimizer.state[p].values():
            if value.shape == p.shape:
                assert torch.count_nonzero(value[z]) == 0
    assert all(torch.count_nonzero(p.detach()[m]) > 0 for p, m in zip(masks.params, masks.masks))


def test_without_masks_the_pruned_weights_come_back():
    """The control for the test above: momentum and Adam state do revive pruned weights (once the
    masks are told to allow unmasked steps; by default such a step is refused)."""
    model = conv_model()
    optimizer = OPTIMIZERS["adam-wd"](model.parameters())
    for _ in range(3):
        step(model, optimizer)
    masks = SLR(model, CONFIG).hard_prune()
    masks.detach()
    for _ in range(5):
        step(model, optimizer)
    assert torch.count_nonzero(masks.params[1].detach()[~masks.masks[1]]) > 0


def test_masks_apply_to_an_ema_copy_by_name():
    model = conv_model()
    ema = copy.deepcopy(model)
    masks = ADMM(model, CONFIG).hard_prune()
    wrapped = nn.Module()
    wrapped.module = ema  # names with a DataParallel-style prefix still match
    masks.apply_(wrapped)
    for name, m in zip(masks.names, masks.masks):
        assert torch.count_nonzero(dict(ema.named_parameters())[name].detach()[~m]) == 0


def test_masks_from_state_dict_checks_shapes():
    model = conv_model()
    masks = SLR(model, CONFIG).hard_prune()
    state = masks.state_dict()
    state["0.weight"] = torch.ones(2, 2, dtype=torch.bool)
    with pytest.raises(CheckpointError, match="mask for '0.weight' has shape"):
        Masks.from_state_dict(conv_model(), state)


def train(method: str, epochs: int, state: dict | None = None):
    """A small SLR/ADMM loop; with ``state`` it continues a saved run."""
    model = conv_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    pruner = build_pruner(method, model, CONFIG, rho=0.1, s0=1e-2)
    pruner.attach(optimizer)
    done = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        pruner.load_state_dict(state["pruner"])
        torch.set_rng_state(state["rng"])
        done = state["epoch"]
    else:
        torch.manual_seed(123)
    for epoch in range(done, epochs):
        losses = []
        for _ in range(4):
            x = torch.randn(16, 3, 6, 6)
            y = torch.randint(0, 10, (16,))
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        pruner.update(sum(losses) / len(losses))
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "pruner": pruner.state_dict(),
                "rng": torch.get_rng_state(), "epoch": epochs}, buffer)
    buffer.seek(0)
    return model, pruner, torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("method", ["slr", "admm"])
def test_save_stop_load_continue_is_bitwise_equal(method):
    model_a, pruner_a, _ = train(method, 6)
    _, _, saved = train(method, 3)
    model_b, pruner_b, _ = train(method, 6, state=saved)
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(pruner_a.Z + pruner_a.dual, pruner_b.Z + pruner_b.dual):
        assert torch.equal(a, b)
    assert pruner_a.history == pruner_b.history
    assert len(pruner_a.history) == 6
    if method == "slr":
        assert pruner_a.s == pruner_b.s


def test_load_state_dict_rejects_another_method_or_layers():
    model = conv_model()
    state = SLR(model, CONFIG).state_dict()
    with pytest.raises(CheckpointError, match="method 'slr'"):
        ADMM(model, CONFIG).load_state_dict(state)
    with pytest.raises(CheckpointError, match="other pruned layers"):
        SLR(model, {"prune_ratios": {"0.weight": 0.5}}).load_state_dict(state)
