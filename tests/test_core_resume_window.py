"""A run stopped inside an ``update_every = 3`` window resumes to the uninterrupted run's numbers."""
import io

import pytest
import torch
from torch import nn

from core import build_pruner

CONFIG = {"prune_ratios": {"0.weight": 0.6, "2.weight": 0.5}}
CALLS = 9


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def run(method: str, calls: int, saved: dict | None = None) -> tuple[nn.Module, object, dict, list[float]]:
    """``calls`` calls of ``update`` (one SGD step each) from scratch or from ``saved``; also the losses."""
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    pruner = build_pruner(method, net, CONFIG, rho=0.2, s0=0.05, update_every=3)
    pruner.attach(optimizer)
    done = 0
    if saved is not None:
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        pruner.load_state_dict(saved["pruner"])
        done = saved["calls"]
    losses = []
    for call in range(done, calls):
        g = torch.Generator().manual_seed(call)
        x, y = torch.randn(12, 6, generator=g), torch.randint(0, 3, (12,), generator=g)
        loss = nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        pruner.update(losses[-1])
    buffer = io.BytesIO()
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "pruner": pruner.state_dict(), "calls": calls}, buffer)
    buffer.seek(0)
    return net, pruner, torch.load(buffer, weights_only=False), losses


@pytest.mark.parametrize("method", ["slr", "admm"])
@pytest.mark.parametrize("stop", [4, 5])
def test_resume_inside_an_update_window_equals_the_uninterrupted_run(method, stop):
    net_a, pruner_a, _, _ = run(method, CALLS)
    _, stopped, saved, _ = run(method, stop)
    assert stopped.k == 1 and len(saved["pruner"]["pending_losses"]) == stop - 3  # really inside the window
    net_b, pruner_b, _, _ = run(method, CALLS, saved)
    assert pruner_b.k == pruner_a.k == 3 and pruner_b.calls == CALLS
    assert pruner_b.history == pruner_a.history  # the losses of the window before the stop count too
    for a, b in zip(net_a.state_dict().values(), net_b.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(pruner_a.Z + pruner_a.dual, pruner_b.Z + pruner_b.dual):
        assert torch.equal(a, b)
    if method == "slr":
        assert pruner_b.s == pruner_a.s and pruner_b.prev_loss == pruner_a.prev_loss
        assert all(torch.equal(a, b) for a, b in zip(pruner_a.W_prev, pruner_b.W_prev))


def test_each_update_records_the_mean_loss_of_its_window():
    _, pruner, _, losses = run("slr", CALLS)
    assert [r["loss"] for r in pruner.history] == pytest.approx([sum(losses[i:i + 3]) / 3 for i in (0, 3, 6)], rel=1e-12)
    assert len(set(losses)) == CALLS  # a wrong window would show
