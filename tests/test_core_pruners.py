"""SLR's stepsizes and surrogate condition, the penalty gradient, and convergence on a problem
whose answer is known."""

import pytest
import torch
from torch import nn

from core import ADMM, SLR, ConfigError, slr_alpha, slr_stepsize


def linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


CONFIG = {"prune_ratios": {"0.weight": 0.6, "2.weight": 0.5}}

# these tests call update() on pruners that no optimizer step penalised, which warns by design
pytestmark = pytest.mark.filterwarnings("ignore:.*no penalty gradient was added:core.errors.PruningWarning")


# eqs. (13)-(14) -------------------------------------------------------------------------------
def test_alpha_against_hand_computed_values():
    # k = 1: 1 - 1/200
    assert slr_alpha(1, 200, 0.1) == pytest.approx(0.995, abs=1e-12)
    # k = 2: 2^0.1 = 1.0717735, exponent 1 - 1/1.0717735 = 0.0669670, 2^0.066967 = 1.0475121,
    # alpha = 1 - 1/(200 * 1.0475121) = 0.9952268
    assert slr_alpha(2, 200, 0.1) == pytest.approx(0.9952268, abs=1e-7)
    # k = 10: 10^0.1 = 1.2589254, exponent 0.2056718, 10^0.2056718 = 1.6057203, alpha = 1 - 1/321.14406
    assert slr_alpha(10, 200, 0.1) == pytest.approx(0.9968861, abs=1e-7)
    # M = 2, r = 0.5, k = 4: 4^0.5 = 2, exponent 0.5, 4^0.5 = 2, alpha = 1 - 1/4
    assert slr_alpha(4, 2, 0.5) == pytest.approx(0.75, abs=1e-12)


def test_stepsize_against_hand_computed_values():
    assert slr_stepsize(1e-4, 0.995, 2.0, 1.0) == pytest.approx(1.99e-4, rel=1e-12)
    assert slr_stepsize(0.5, 0.75, 1.0, 4.0) == pytest.approx(0.09375, rel=1e-12)
    assert slr_stepsize(0.5, 0.75, 1.0, 0.0) == 0.5  # zero gap: stepsize kept


# eqs. (11)-(12): the surrogate condition -----------------------------------------------------
def perturb(model: nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


def test_first_update_without_reference_loss_is_taken():
    model = linear_model()
    pruner = SLR(model, CONFIG, rho=0.1, s0=1e-2)
    W0 = [p.detach().clone() for p in pruner.params]
    Z0 = [z.clone() for z in pruner.Z]
    perturb(model)
    record = pruner.update(1.0)
    assert record["condition"] is None and record["accepted"]
    alpha = 1 - 1 / 200
    for layer, w0, z0, w, z, lam in zip(pruner.layers, W0, Z0, pruner.params, pruner.Z, pruner.dual):
        assert torch.equal(z, layer.project(w.detach()))  # Lambda^1 = 0, so Z^1 = Proj(W^1)
        s = alpha * 1e-2 * float((w0 - z0).norm()) / float((w.detach() - z).norm())
        assert torch.allclose(lam, s * (w.detach() - z), atol=1e-9)
        assert record["s"][layer.name] == pytest.approx(s, rel=1e-6)


def test_condition_accept_path_updates_multipliers_and_stepsize():
    model = linear_model()
    pruner = SLR(model, CONFIG, rho=0.1, s0=1e-2)
    pruner.set_reference_loss(5.0)
    perturb(model)
    record = pruner.update(1.0)  # loss fell by 4: the penalty terms cannot outweigh it
    assert record["condition"] is True
    assert record["mixed_loss"] < record["mixed_loss_prev"]
    assert all(float(lam.abs().sum()) > 0 for lam in pruner.dual)
    assert all(s != 1e-2 for s in record["s"].values())


def test_condition_reject_path_keeps_multipliers_and_stepsize():
    model = linear_model()
    pruner = SLR(model, CONFIG, rho=0.1, s0=1e-2)
    pruner.set_reference_loss(5.0)
    perturb(model, 1)
    pruner.update(1.0)
    dual_before = [d.clone() for d in pruner.dual]
    s_before = list(pruner.s)
    perturb(model, 2)
    record = pruner.update(9.0)  # loss rose by 8: condition (11) fails
    assert record["condition"] is False and not record["accepted"]
    assert record["mixed_loss"] >= record["mixed_loss_prev"]
    assert all(torch.equal(a, b) for a, b in zip(dual_before, pruner.dual))
    assert pruner.s == s_before
    # W^k and Z^k are kept as the new previous point (Algorithm 1)
    assert all(torch.equal(wp, p.detach()) for wp, p in zip(pruner.W_prev, pruner.params))
    assert pruner.prev_loss == 9.0


def test_mixed_loss_is_the_augmented_lagrangian():
    model = linear_model()
    pruner = SLR(model, CONFIG, rho=0.3, s0=1e-2)
    perturb(model)
    pruner.update(2.0)
    lam = [d.clone() for d in pruner.dual]
    perturb(model, 5)
    W = [p.detach().clone() for p in pruner.params]
    record = pruner.update(1.5)
    Z = pruner.Z
    expected = 1.5 + sum(float((l * (w - z)).sum()) for l, w, z in zip(lam, W, Z)) + 0.15 * sum(float((w - z).square().sum()) for w, z in zip(W, Z))
    assert record["mixed_loss"] == pytest.approx(expected, rel=1e-5)


# the penalty gradient (eq. 8) -------------------------------------------------------------------
def loss_fn(model: nn.Module) -> torch.Tensor:
    torch.manual_seed(7)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    return nn.functional.cross_entropy(model(x), y)


@pytest.mark.parametrize("method", ["slr", "admm"])
def test_penalty_gradient_is_added_exactly(method):
    model = linear_model()
    pruner = SLR(model, CONFIG, rho=0.2, s0=0.05) if method == "slr" else ADMM(model, CONFIG, rho=0.2)
    perturb(model)
    pruner.update(1.0)
    perturb(model, 3)
    loss_fn(model).backward()
    plain = [p.grad.clone() for p in pruner.params]
    pruner.add_penalty_grad()
    for g0, p, z, dual in zip(plain, pruner.params, pruner.Z, pruner.dual):
        w = p.detach()
        expected = g0 + dual + 0.2 * (w - z) if method == "slr" else g0 + 0.2 * (w - z + dual)
        assert torch.allclose(p.grad, expected, atol=1e-6)
    assert float(sum(d.abs().sum() for d in pruner.dual)) > 0  # the dual term is really exercised


def test_attach_adds_penalty_after_amp_unscaling():
    """With GradScaler the hook sees unscaled gradients: the update equals the unscaled run's."""
    results = []
    for use_scaler in (False, True):
        model = linear_model()
        pruner = SLR(model, CONFIG, rho=0.5, s0=0.1)
        perturb(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        pruner.attach(optimizer)
        loss = loss_fn(model)
        if use_scaler:
            scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        results.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-6)
    model = linear_model()
    perturb(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn(model).backward()
    optimizer.step()  # without the pruner the step differs, so the comparison above means something
    assert not torch.allclose(next(model.parameters()), results[0][0], atol=1e-6)


def test_attach_needs_an_optimizer_holding_the_weights():
    model = linear_model()
    pruner = SLR(model, CONFIG)
    other = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="holds none of the pruned parameters"):
        pruner.attach(other)


def test_hyperparameter_errors():
    with pytest.raises(ConfigError, match="M = 1"):
        SLR(linear_model(), CONFIG, M=1)
    with pytest.raises(ConfigError, match="r = 1.5"):
        SLR(linear_model(), CONFIG, r=1.5)
    with pytest.raises(ConfigError, match="rho = 0"):
        ADMM(linear_model(), CONFIG, rho=0)


# a problem with a known answer ------------------------------------------------------------------
SUPPORT = [1, 5, 9, 13]


def sparse_least_squares(method: str, **hyper):
    """min ||Ax - b||^2 s.t. card(x) <= 4, b from a 4-sparse x plus noise.

    The answer is least squares restricted to the true support."""
    torch.manual_seed(0)
    A = torch.randn(200, 20)
    x_true = torch.zeros(20)
    x_true[SUPPORT] = torch.tensor([2.0, -3.0, 1.5, 2.5])
    b = A @ x_true + 0.3 * torch.randn(200)
    answer = torch.linalg.lstsq(A[:, SUPPORT], b.unsqueeze(1)).solution.squeeze(1)
    model = nn.Linear(20, 1, bias=False)
    pruner = (SLR if method == "slr" else ADMM)(model, {"prune_ratios": {"weight": 0.8}}, **hyper)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    pruner.attach(optimizer)
    for _ in range(100):
        total = 0.0
        for _ in range(20):
            loss = (model(A).squeeze(1) - b).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        pruner.update(total / 20)
    pruner.hard_prune()
    return model.weight.detach()[0], answer, pruner


@pytest.mark.parametrize("method,hyper", [("admm", {"rho": 1.0}), ("slr", {"rho": 1.0, "s0": 0.2, "M": 2, "r": 0.5})])
def test_converges_to_the_known_sparse_solution(method, hyper):
    w, answer, pruner = sparse_least_squares(method, **hyper)
    violations = [r["violation"] for r in pruner.history]
    assert violations[-1] < 1e-5 < violations[0]
    assert torch.count_nonzero(w) == 4
    assert w.nonzero().squeeze(1).tolist() == SUPPORT
    assert torch.allclose(w[SUPPORT], answer, atol=1e-4)
    if method == "slr":  # both branches of Algorithm 1 were taken on the way
        conditions = {r["condition"] for r in pruner.history[1:]}
        assert conditions == {True, False}


def test_update_every_acts_on_every_nth_call_with_mean_loss():
    model = linear_model()
    pruner = SLR(model, CONFIG, update_every=3)
    assert pruner.update(1.0) is None and pruner.update(2.0) is None
    record = pruner.update(6.0)
    assert record["loss"] == pytest.approx(3.0) and pruner.k == 1
