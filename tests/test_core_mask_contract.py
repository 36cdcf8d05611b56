"""The mask contract: what attaching masks, a masked step, ``from_model`` and ``hard_prune`` promise."""
import pytest
import torch
from torch import nn

from core import ADMM, SLR, Masks


def conv_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


CONFIG = {"prune_ratios": {"0.weight": 0.7, "3.weight": 0.9}}


def loss_of(model: nn.Module) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 6, 6, generator=g), torch.randint(0, 10, (16,), generator=g)
    return nn.functional.cross_entropy(model(x), y)


def saved_masks() -> dict[str, torch.Tensor]:
    return SLR(conv_model(), CONFIG).hard_prune().state_dict()


def test_attaching_loaded_masks_zeroes_a_dense_model_at_once():
    state = saved_masks()
    dense = conv_model(seed=1)
    before = {n: p.detach().clone() for n, p in dense.named_parameters()}
    masks = Masks.from_state_dict(dense, state)
    masks.attach(torch.optim.SGD(dense.parameters(), lr=0.1))
    params = dict(dense.named_parameters())
    for name, keep in state.items():
        w = params[name].detach()
        assert int((~keep).sum()) > 0 and torch.count_nonzero(w[~keep]) == 0  # zeroed before any step
        assert torch.equal(w[keep], before[name][keep])  # the kept weights are untouched
    assert torch.equal(params["0.bias"], before["0.bias"])  # unmasked parameters too


def test_gradients_are_zero_at_pruned_positions_after_a_step():
    model = conv_model()
    masks = SLR(model, CONFIG).hard_prune()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # no momentum: only the gradient mask shows
    masks.attach(optimizer)
    loss_of(model).backward()
    assert all(torch.count_nonzero(p.grad[~m]) > 0 for p, m in zip(masks.params, masks.masks))  # before the step
    optimizer.step()
    for p, m in zip(masks.params, masks.masks):
        assert torch.count_nonzero(p.grad[~m]) == 0
        assert torch.count_nonzero(p.grad[m]) > 0


def test_from_model_keeps_negative_and_drops_only_zero_weights():
    model = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 0.0, 2.0], [-1e-8, 0.5, -0.0]]))
    masks = Masks.from_model(model, ["module.weight"])  # wrapper prefixes are ignored
    assert masks.names == ["weight"]
    assert masks.masks[0].tolist() == [[True, False, True], [True, True, False]]
    assert masks.kept() == {"weight": 4}


@pytest.mark.parametrize("method", ["slr", "admm"])
def test_after_hard_prune_a_zero_gradient_step_leaves_the_weights(method):
    """hard_prune detaches the penalty: with a zero loss gradient nothing moves any more."""
    model = conv_model()
    pruner = SLR(model, CONFIG, rho=0.5, s0=0.1) if method == "slr" else ADMM(model, CONFIG, rho=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    pruner.attach(optimizer)
    for _ in range(2):
        optimizer.zero_grad()
        loss_of(model).backward()
        optimizer.step()
        pruner.update(1.0)
    pruner.hard_prune()
    # the penalty would not be zero here: Z and the duals differ from the pruned weights
    assert any(torch.count_nonzero(d) > 0 for d in pruner.dual)
    assert any(not torch.equal(p.detach(), z) for p, z in zip(pruner.params, pruner.Z))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.zero_grad()
    (0.0 * sum(p.sum() for p in model.parameters())).backward()
    optimizer.step()
    assert all(torch.equal(a, p.detach()) for a, p in zip(before, model.parameters()))


def test_hard_prune_returns_masks_of_the_projection_and_prunes_in_place():
    model = conv_model()
    pruner = ADMM(model, CONFIG)
    expected = [layer.mask(p.detach()) for layer, p in zip(pruner.layers, pruner.params)]
    masks = pruner.hard_prune()
    assert masks.names == ["0.weight", "3.weight"]
    assert all(torch.equal(a, b) for a, b in zip(masks.masks, expected))
    assert all(p is q for p, q in zip(masks.params, pruner.params))  # the live parameters
    assert masks.kept() == {"0.weight": 65, "3.weight": 128}  # 216 - round(0.7 * 216), 1280 - 1152
    for p, m in zip(pruner.params, expected):
        assert torch.count_nonzero(p.detach()[~m]) == 0 and torch.count_nonzero(p.detach()[m]) == int(m.sum())
