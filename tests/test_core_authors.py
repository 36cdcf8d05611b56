"""slr_authors and admm_authors against hand-computed values and against a loop written the way the
authors' code runs: duals built from the live weights with autograd through them, the penalty
added to the loss, Z and the duals updated at the first batch of every epoch from the second on.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core import ADMM, SLR, build_pruner, slr_alpha
from core.pruning.authors import percentile_project, percentile_threshold
from core.errors import ConfigError

RHO, S0, M, R = 0.1, 1e-2, 300.0, 0.1
# the arithmetic tests call update() without training in between, which warns by design
no_training_warning = pytest.mark.filterwarnings("ignore:.*no penalty gradient was added")
RATIOS = {"0.weight": 0.75, "2.weight": 0.5}


def _np_percentile_project(weight: np.ndarray, ratio: float) -> np.ndarray:
    """The authors' irregular weight_pruning: zero |w| below numpy's percentile."""
    out = weight.copy()
    out[np.abs(weight) < np.percentile(np.abs(weight), ratio * 100)] = 0
    return out


def _model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 4))


def _batches(epochs: int, steps: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    g = torch.Generator().manual_seed(5)
    return [[(torch.randn(16, 6, generator=g), torch.randint(0, 4, (16,), generator=g)) for _ in range(steps)] for _ in range(epochs)]


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5, nesterov=True, weight_decay=5e-4)


# --- the percentile projection -------------------------------------------------------------
@pytest.mark.parametrize("n,ratio", [(37, 0.9), (100, 0.5), (64, 0.885), (2, 0.3), (1000, 0.0)])
def test_percentile_threshold_is_numpys(n: int, ratio: float) -> None:
    values = torch.rand(n, generator=torch.Generator().manual_seed(n))
    assert float(percentile_threshold(values, ratio)) == pytest.approx(float(np.percentile(values.numpy(), ratio * 100)), rel=1e-6)


def test_percentile_project_keeps_ties_at_the_threshold_and_zeroes_below() -> None:
    w = torch.tensor([0.5, -0.1, 0.3, -0.3, 0.2, 0.0, 0.9, -0.3])
    # |w| sorted: 0, .1, .2, .3, .3, .3, .5, .9 ; 50th percentile at position 3.5 -> 0.3
    out = percentile_project(w, 0.5)
    assert out.tolist() == pytest.approx([0.5, 0.0, 0.3, -0.3, 0.0, 0.0, 0.9, -0.3])
    torch.testing.assert_close(out, torch.from_numpy(_np_percentile_project(w.numpy(), 0.5)))


# --- the gain by hand ----------------------------------------------------------------------
@no_training_warning
def test_admm_authors_penalty_gradient_after_n_updates_is_rho_times_1_plus_n() -> None:
    model = _model()
    pruner = build_pruner("admm_authors", model, {"prune_ratios": RATIOS}, rho=0.3)
    g = torch.Generator().manual_seed(0)
    for n in range(1, 4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
        pruner.update(1.0)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        pruner.add_penalty_grad()
        for p, z, u in zip(pruner.params, pruner.Z, pruner.dual):
            torch.testing.assert_close(p.grad, 0.3 * (1 + n) * (p.detach() - z + u), rtol=1e-6, atol=1e-7)
    plain = build_pruner("admm", _model(), {"prune_ratios": RATIOS}, rho=0.3)
    assert plain.gain == [1.0, 1.0] and not plain.amplify


def _norm_sum(diffs) -> float:
    return sum(float(torch.linalg.vector_norm(x)) for x in diffs)


def _lag(loss: float, lam, diffs) -> float:
    return loss + sum(float((l * x).sum()) + RHO / 2 * float((x * x).sum()) for l, x in zip(lam, diffs))


@no_training_warning
def test_slr_authors_first_two_updates_by_hand() -> None:
    model = _model()
    pruner = SLR(model, {"prune_ratios": RATIOS}, rho=RHO, s0=S0, M=M, r=R, variant="authors")
    Z0 = [z.clone() for z in pruner.Z]
    W = [p.detach().clone() for p in pruner.params]  # no training in between: W stays
    sub = lambda a, b: [x - y for x, y in zip(a, b)]  # noqa: E731

    # update 1, loss 5 after a previous loss of 0: phase 1 fails its condition but k = 1 forces it;
    # its norms are of W_prev - Z_prev = 0 - 0, so the stepsize stays and Lambda = s0 (W - 0)
    first = pruner.update(5.0)
    assert first["condition_first"] is False and first["accepted_first"] is True
    lam1 = [S0 * w for w in W]
    Z1 = [percentile_project(w + l / RHO, RATIOS[n]) for w, l, n in zip(W, lam1, RATIOS)]
    torch.testing.assert_close(pruner.Z, Z1)
    # phase 2 compares loss 5 at (W, Z1) with the previous loss 0 at (W, Z0): fails, not forced (k = 2)
    assert first["mixed_loss"] == pytest.approx(_lag(5.0, lam1, sub(W, Z1)))
    assert first["mixed_loss_prev"] == pytest.approx(_lag(0.0, lam1, sub(W, Z0)))
    assert first["condition"] is False and first["accepted_second"] is False
    torch.testing.assert_close(pruner.dual, lam1)
    assert pruner.k_taken == 2 and pruner.s == [S0, S0] and pruner.gain == pytest.approx([1 + S0 / RHO] * 2)

    # update 2, loss 1: phase 1 holds (1 < 5 at the same W, Z_prev = Z0); equal norms: s = alpha(2) s0
    second = pruner.update(1.0)
    assert second["condition_first"] is True
    s1 = slr_alpha(2, M, R) * S0
    lam2 = [l + s1 * x for l, x in zip(lam1, sub(W, Z0))]
    # phase 2: Z2 = Proj(W + Lambda / rho), loss 1 at (W, Z2) against loss 5 at (W, Z1) (Z_prev = Z1 now)
    Z2 = [percentile_project(w + l / RHO, RATIOS[n]) for w, l, n in zip(W, lam2, RATIOS)]
    torch.testing.assert_close(pruner.Z, Z2)
    assert second["mixed_loss"] == pytest.approx(_lag(1.0, lam2, sub(W, Z2)))
    assert second["mixed_loss_prev"] == pytest.approx(_lag(5.0, lam2, sub(W, Z1)))
    assert second["condition"] is True
    s2 = slr_alpha(3, M, R) * s1 * _norm_sum(sub(W, Z1)) / _norm_sum(sub(W, Z2))
    assert pruner.s == pytest.approx([s2, s2])
    torch.testing.assert_close(pruner.dual, [l + s2 * x for l, x in zip(lam2, sub(W, Z2))])
    assert pruner.k_taken == 4 and pruner.gain == pytest.approx([1 + (S0 + s1 + s2) / RHO] * 2)
    torch.testing.assert_close(pruner.Z_prev, Z2)


def test_variant_is_checked() -> None:
    with pytest.raises(ConfigError, match="variant"):
        ADMM(_model(), {"prune_ratios": RATIOS}, variant="author")


# --- against a loop written as the authors' code runs -------------------------------------------
def _reference_run(method: str, epochs: int, steps: int) -> dict:
    """Train with the authors' computation: live duals under autograd, updates at batch 0 of epochs >= 2."""
    model = _model()
    params = dict(model.named_parameters())
    names = list(RATIOS)
    optimizer = _sgd(model)

    def proj(t: torch.Tensor, name: str) -> torch.Tensor:
        return torch.from_numpy(_np_percentile_project(t.detach().numpy(), RATIOS[name]))

    Z = {n: proj(params[n], n) for n in names}
    U = {n: torch.zeros_like(params[n]) for n in names}
    Lam = {n: torch.zeros_like(params[n]) for n in names}
    W_prev = {n: torch.zeros_like(params[n]) for n in names}
    Z_prev = {n: torch.zeros_like(params[n]) for n in names}
    state = {"k": 1, "s": S0, "ce": 0.0, "ce_prev": 0.0}
    conditions: list[tuple[int, int]] = []

    def lagrangian(ce: float, w_of, z_of) -> float:
        total = ce
        for n in names:
            u = Lam[n] / RHO
            total += float(0.5 * RHO * torch.norm(w_of(n) - z_of(n) + u) ** 2 + 0.5 * RHO * torch.norm(u) ** 2)
        return total

    def slr_step(first: bool) -> int:
        k, s = state["k"], state["s"]
        alpha = 1 - 1 / (M * k ** (1 - 1 / k**R))
        if first:
            n1 = sum(float(torch.norm(W_prev[n] - Z_prev[n])) for n in names)
            n2 = sum(float(torch.norm(params[n] - Z_prev[n])) for n in names)
            ok = lagrangian(state["ce"], lambda n: params[n], lambda n: Z_prev[n]) < lagrangian(state["ce_prev"], lambda n: W_prev[n], lambda n: Z_prev[n])
            target = Z_prev
        else:
            for n in names:
                Z[n] = proj(params[n] + U[n], n)
            n1 = sum(float(torch.norm(W_prev[n] - Z_prev[n])) for n in names)
            n2 = sum(float(torch.norm(params[n] - Z[n])) for n in names)
            ok = lagrangian(state["ce"], lambda n: params[n], lambda n: Z[n]) < lagrangian(state["ce_prev"], lambda n: params[n], lambda n: Z_prev[n])
            target = Z
        if ok or k == 1:
            state["k"] = k + 1
            if n1 != 0 and n2 != 0:
                state["s"] = alpha * s * n1 / n2
            for n in names:
                Lam[n] = state["s"] * (params[n] - target[n]) + Lam[n]  # live W: autograd flows through
                W_prev[n] = params[n]
                Z_prev[n] = Z[n] if first else target[n]
        for n in names:
            U[n] = Lam[n] / RHO
        return int(ok)

    for epoch in range(1, epochs + 1):
        total = 0.0
        for b, (x, y) in enumerate(_batches(epochs, steps)[epoch - 1]):
            if epoch != 1 and b == 0:
                if method == "admm_authors":
                    for n in names:
                        Z[n] = proj(params[n] + U[n], n)
                        U[n] = params[n] - Z[n] + U[n]  # live W
                else:
                    conditions.append((slr_step(True), slr_step(False)))
            ce = nn.functional.cross_entropy(model(x), y)
            total += float(ce.detach())
            mixed = ce + sum(0.5 * RHO * torch.norm(params[n] - Z[n] + U[n]) ** 2 for n in names)
            optimizer.zero_grad()
            mixed.backward(retain_graph=True)
            optimizer.step()
        state["ce_prev"], state["ce"] = state["ce"], total / steps
    return {"weights": {n: p.detach().clone() for n, p in params.items()}, "conditions": conditions, "s": state["s"], "k": state["k"]}


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")  # the reference's norms of live duals
@pytest.mark.parametrize("method", ["admm_authors", "slr_authors"])
def test_explicit_gain_equals_autograd_through_the_authors_live_duals(method: str) -> None:
    epochs, steps = 6, 3
    reference = _reference_run(method, epochs, steps)
    model = _model()
    optimizer = _sgd(model)
    pruner = build_pruner(method, model, {"prune_ratios": RATIOS}, rho=RHO, s0=S0, M=M, r=R)
    pruner.attach(optimizer)
    for batches in _batches(epochs, steps):
        total = 0.0
        for x, y in batches:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        pruner.update(total / steps)  # after each epoch = the authors' batch 0 of the next one
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), reference["weights"][name], rtol=1e-4, atol=1e-6)
    if method == "slr_authors":
        ours = [(int(r["condition_first"]), int(r["condition"])) for r in pruner.history][: epochs - 1]
        assert ours == reference["conditions"]
        # the record of the last update the reference also made
        assert pruner.history[epochs - 2]["k_taken"] == reference["k"]
    assert pruner.gain[0] > 1.0


@no_training_warning
def test_amplify_off_is_the_paper_gradient() -> None:
    model = _model()
    pruner = build_pruner("admm_authors", model, {"prune_ratios": RATIOS}, rho=RHO, amplify=False)
    pruner.update(1.0)
    pruner.update(1.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    pruner.add_penalty_grad()
    for p, z, u in zip(pruner.params, pruner.Z, pruner.dual):
        torch.testing.assert_close(p.grad, RHO * (p.detach() - z + u))


@no_training_warning
def test_slr_with_amplify_scales_each_layer_by_its_own_stepsizes() -> None:
    model = _model()
    pruner = SLR(model, {"prune_ratios": RATIOS}, rho=RHO, s0=S0, M=M, r=R, amplify=True)
    pruner.update(2.0)  # the first update is taken (no reference loss)
    s = list(pruner.s)
    assert pruner.gain == pytest.approx([1 + si / RHO for si in s])
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    pruner.add_penalty_grad()
    for p, z, lam, g in zip(pruner.params, pruner.Z, pruner.dual, pruner.gain):
        torch.testing.assert_close(p.grad, g * (lam + RHO * (p.detach() - z)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("method", ["slr_authors", "admm_authors"])
def test_authors_state_resumes_to_the_same_updates(method: str) -> None:
    def run(split: bool) -> list[torch.Tensor]:
        model = _model()
        optimizer = _sgd(model)
        pruner = build_pruner(method, model, {"prune_ratios": RATIOS}, rho=RHO, s0=S0, M=M, r=R)
        pruner.attach(optimizer)
        for e, batches in enumerate(_batches(5, 2)):
            if split and e == 3:
                state = pruner.state_dict()
                pruner.detach()
                pruner = build_pruner(method, model, {"prune_ratios": RATIOS}, rho=RHO, s0=S0, M=M, r=R)
                pruner.load_state_dict(state)
                pruner.attach(optimizer)
            for x, y in batches:
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            pruner.update(float(loss))
        return [p.detach().clone() for p in model.parameters()] + list(pruner.dual)

    for a, b in zip(run(False), run(True)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
