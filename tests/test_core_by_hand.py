"""SLR's second update and three ADMM updates, checked against values computed by hand.

One pruned weight of four entries, half of them kept (irregular), with W set by hand before
every update; rho = 0.3 for SLR and 0.5 for ADMM, so a lost or misplaced rho shows.
"""
import math

import pytest
import torch
from torch import nn

from core import ADMM, SLR

# these tests call update() without training in between, which warns by design
pytestmark = pytest.mark.filterwarnings("ignore:.*no penalty gradient was added:core.errors.PruningWarning")

CONFIG = {"prune_ratios": {"weight": 0.5}}


def four_weights() -> nn.Linear:
    return nn.Linear(4, 1, bias=False)


def set_weight(model: nn.Linear, values: list[float]) -> None:
    with torch.no_grad():
        model.weight.copy_(torch.tensor([values], dtype=torch.float32))


def close(tensor: torch.Tensor, values: list[float]) -> bool:
    return torch.allclose(tensor, torch.tensor([values], dtype=tensor.dtype), atol=1e-6, rtol=0)


def penalty_grad(pruner, model: nn.Linear) -> torch.Tensor:
    """The gradient the pruner adds to a zero loss gradient."""
    model.weight.grad = torch.zeros_like(model.weight)
    pruner.add_penalty_grad()
    return model.weight.grad


# SLR, eqs. (10)-(14) ------------------------------------------------------------------------------
# M = 2, r = 0.5, s0 = 0.6, rho = 0.3.
# W^0 = [10, -8, 3, 4]        Z^0 = [10, -8, 0, 0]    W^0 - Z^0 = [0, 0, 3, 4]       norm 5
# first update, f = 10, Lambda^0 = 0:
# W^1 = [6, -5, 1.5, -2]      Z^1 = Proj(W^1) = [6, -5, 0, 0]
# W^1 - Z^1 = [0, 0, 1.5, -2] norm 2.5
# alpha^1 = 1 - 1/M = 0.5;  s^1 = 0.5 * 0.6 * 5 / 2.5 = 0.6
# Lambda^1 = 0.6 * [0, 0, 1.5, -2] = [0, 0, 0.9, -1.2];  Lambda^1 / rho = [0, 0, 3, -4]
# second update:
# W^2 = [6, -8, 6, -5]        W^2 + Lambda^1/rho = [6, -8, 9, -9]  ->  Z^2 = [0, 0, 9, -9]
#   (Proj(W^2) = [6, -8, 0, 0], Proj(W^2 - Lambda/rho) = [6, -8, 0, 0] and
#    Proj(W^2 + rho Lambda) = [0, -8, 6.27, 0] all differ from it)
# W^2 - Z^2 = [6, -8, -3, 4]  ||.||^2 = 125
# L(W^2, Z^2, Lambda^1) = f2 + <Lambda^1, W^2 - Z^2> + rho/2 * 125 = f2 - 7.5 + 18.75 = f2 + 11.25
# L(W^1, Z^1, Lambda^1) = 10 + <Lambda^1, W^1 - Z^1> + rho/2 * 6.25 = 10 + 3.75 + 0.9375 = 14.6875
# alpha^2 = 1 - 1/(2 * 2^(1 - 2^-0.5)) = 1 - 1/(2 * 2^0.2928932) = 1 - 1/(2 * 1.2250800) = 0.5918683
# s^2 = alpha^2 * 0.6 * 2.5 / sqrt(125) = 0.5918683 * 0.1341641 = 0.0794075
# Lambda^2 = Lambda^1 + s^2 (W^2 - Z^2) = [0.4764448, -0.6352597, 0.6617776, -0.8823702]
ALPHA2 = 0.5918683
S2 = 0.0794075


def slr_after_first_update() -> tuple[SLR, nn.Linear]:
    model = four_weights()
    set_weight(model, [10, -8, 3, 4])
    pruner = SLR(model, CONFIG, rho=0.3, s0=0.6, M=2, r=0.5)
    set_weight(model, [6, -5, 1.5, -2])
    record = pruner.update(10.0)
    assert record["condition"] is None and record["accepted"]
    assert record["mixed_loss"] == pytest.approx(10.0 + 0.15 * 6.25, abs=1e-6)  # Lambda^0 = 0
    assert record["mixed_loss_prev"] is None
    assert record["alpha"] == pytest.approx(0.5, abs=1e-12)
    assert record["s"]["weight"] == pytest.approx(0.6, abs=1e-9)
    assert record["violation"] == pytest.approx(2.5, abs=1e-6)
    assert close(pruner.Z[0], [6, -5, 0, 0])
    assert close(pruner.dual[0], [0, 0, 0.9, -1.2])
    return pruner, model


@pytest.mark.parametrize("f2,accepted", [(3.0, True), (3.5, False)])
def test_slr_second_update_by_hand(f2, accepted):
    """f2 = 3.0: 14.25 < 14.6875, the condition holds; f2 = 3.5: 14.75 >= 14.6875, it fails."""
    pruner, model = slr_after_first_update()
    set_weight(model, [6, -8, 6, -5])
    record = pruner.update(f2)
    assert record["k"] == 2
    assert close(pruner.Z[0], [0, 0, 9, -9])  # eq. (10)
    assert record["mixed_loss"] == pytest.approx(f2 + 11.25, abs=1e-5)  # eq. (11), left side
    assert record["mixed_loss_prev"] == pytest.approx(14.6875, abs=1e-5)  # eq. (11), right side
    assert record["condition"] is accepted and record["accepted"] is accepted
    assert record["alpha"] == pytest.approx(ALPHA2, abs=1e-7)  # eq. (14)
    assert record["violation"] == pytest.approx(math.sqrt(125), abs=1e-5)
    assert record["violation_per_layer"]["weight"] == pytest.approx(math.sqrt(125), abs=1e-5)
    if accepted:
        assert record["s"]["weight"] == pytest.approx(S2, abs=1e-7)  # eq. (13)
        assert close(pruner.dual[0], [0.4764448, -0.6352597, 0.6617776, -0.8823702])  # eq. (12)
    else:  # Algorithm 1: multipliers and stepsize stay
        assert record["s"]["weight"] == pytest.approx(0.6, abs=1e-9)
        assert close(pruner.dual[0], [0, 0, 0.9, -1.2])
    # (W^2, Z^2, f2) become the previous point in both outcomes
    assert close(pruner.W_prev[0], [6, -8, 6, -5])
    assert pruner.prev_loss == f2
    assert pruner.violations()["weight"] == pytest.approx(math.sqrt(125), abs=1e-5)
    # eq. (8): the gradient added is Lambda + rho (W - Z) with the new Lambda and Z
    lam = pruner.dual[0]
    expected = lam + 0.3 * torch.tensor([[6.0, -8.0, -3.0, 4.0]])
    assert torch.allclose(penalty_grad(pruner, model), expected, atol=1e-6)


def test_slr_first_condition_with_a_reference_loss_by_hand():
    """With f(W^0) = 12 the first condition compares 10 + 0.9375 with 12 + 0 + 0.15 * 25 = 15.75."""
    model = four_weights()
    set_weight(model, [10, -8, 3, 4])
    pruner = SLR(model, CONFIG, rho=0.3, s0=0.6, M=2, r=0.5)
    pruner.set_reference_loss(12.0)
    set_weight(model, [6, -5, 1.5, -2])
    record = pruner.update(10.0)
    assert record["mixed_loss_prev"] == pytest.approx(15.75, abs=1e-6)
    assert record["condition"] is True


# ADMM --------------------------------------------------------------------------------------------
# rho = 0.5, U^0 = 0; mixed loss = f + rho <U^{k-1}, W - Z> + rho/2 ||W - Z||^2
# 1: W = [4, -3, 2, 1]    W + U = [4, -3, 2, 1]     Z = [4, -3, 0, 0]   W - Z = [0, 0, 2, 1]
#    mixed = f + 0 + 0.25 * 5 = f + 1.25                                 U = [0, 0, 2, 1]
# 2: W = [1, -1, 0.5, 2]  W + U = [1, -1, 2.5, 3]   Z = [0, 0, 2.5, 3]  W - Z = [1, -1, -2, -1]
#    mixed = f + 0.5 * (-5) + 0.25 * 7 = f - 0.75                        U = [1, -1, 0, 0]
#    (Proj(W - U) = [1, 0, -1.5, 0] differs)
# 3: W = [0.5, 3, -1, 0]  W + U = [1.5, 2, -1, 0]   Z = [1.5, 2, 0, 0]  W - Z = [-1, 1, -1, 0]
#    mixed = f + 0.5 * (-2) + 0.25 * 3 = f - 0.25                        U = [0, 0, -1, 0]
#    (Proj(W - U) = [0, 4, -1, 0] differs)
# penalty gradient after 3: rho (W - Z + U) = 0.5 * [-1, 1, -2, 0] = [-0.5, 0.5, -1, 0]
ADMM_STEPS = [
    # W, f, Z, U, mixed loss, ||W - Z||^2
    ([4, -3, 2, 1], 2.0, [4, -3, 0, 0], [0, 0, 2, 1], 3.25, 5.0),
    ([1, -1, 0.5, 2], 1.5, [0, 0, 2.5, 3], [1, -1, 0, 0], 0.75, 7.0),
    ([0.5, 3, -1, 0], 1.0, [1.5, 2, 0, 0], [0, 0, -1, 0], 0.75, 3.0),
]


def test_admm_three_updates_by_hand():
    model = four_weights()
    set_weight(model, [9, 1, 1, 1])
    pruner = ADMM(model, CONFIG, rho=0.5)
    for k, (w, f, z, u, mixed, sq) in enumerate(ADMM_STEPS, start=1):
        set_weight(model, w)
        record = pruner.update(f)
        assert record["k"] == k
        assert close(pruner.Z[0], z), k
        assert close(pruner.dual[0], u), k
        assert record["mixed_loss"] == pytest.approx(mixed, abs=1e-6)
        assert record["violation"] == pytest.approx(math.sqrt(sq), abs=1e-6)
        assert record["violation_per_layer"] == {"weight": pytest.approx(math.sqrt(sq), abs=1e-6)}
        assert record["loss"] == f and record["condition"] is None and record["accepted"] is True
    assert close(penalty_grad(pruner, model), [-0.5, 0.5, -1, 0])
