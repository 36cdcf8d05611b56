"""Budgets against masks for every scheme, tie order, refused boundary values, and top-k ties on
large tensors."""
import pytest
import torch
from torch import nn

from core import SLR, ADMM, ConfigError, Scheme, SparsityConfig, sparsity_mask, topk_mask


class TwoLayers(nn.Module):
    """A conv weight with out != in (so filters, channels and columns all differ) and a linear one."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 6, 3, bias=False)  # (6, 8, 3, 3): 432 weights, 72 columns of 6
        self.fc = nn.Linear(16, 5, bias=False)  # (5, 16): 80 weights


def layers(scheme: str, ratio: float | None = 0.3):
    entry = {"scheme": scheme} if ratio is None else {"scheme": scheme, "ratio": ratio}
    torch.manual_seed(0)
    model = TwoLayers()
    return SparsityConfig.from_dict({"prune_ratios": {"conv.weight": entry, "fc.weight": entry}}).resolve(model)


# keep_count(units, 0.3) = units - round(0.3 units); round(1.5) = 2 (half to even)
BUDGETS_AT_0_3 = {
    "irregular": {"conv.weight": 432 - 130, "fc.weight": 80 - 24},
    "filter": {"conv.weight": (6 - 2) * 72, "fc.weight": (5 - 2) * 16},
    "channel": {"conv.weight": (8 - 2) * 54, "fc.weight": (16 - 5) * 5},
    "column": {"conv.weight": (72 - 22) * 6, "fc.weight": (16 - 5) * 5},
}
NM_BUDGETS = {"2:4": (216, 40), "1:4": (108, 20), "3:8": (162, 30)}


@pytest.mark.parametrize("scheme", list(BUDGETS_AT_0_3))
def test_budget_by_hand(scheme):
    budgets = {l.name: l.budget for l in layers(scheme)}
    assert budgets == BUDGETS_AT_0_3[scheme]
    assert all(type(b) is int for b in budgets.values())


@pytest.mark.parametrize("scheme", list(NM_BUDGETS))
def test_n_m_budget_by_hand(scheme):
    conv, fc = layers(scheme, ratio=None)
    assert (conv.budget, fc.budget) == NM_BUDGETS[scheme]
    assert type(conv.budget) is int and type(fc.budget) is int
    assert conv.ratio == fc.ratio == Scheme.parse(scheme).nm_ratio


WEIGHTS = {
    "random": lambda shape, g: torch.randn(shape, generator=g),
    "all-equal": lambda shape, g: torch.ones(shape),
    "few-levels": lambda shape, g: torch.randint(-2, 3, shape, generator=g).float() + 0.5,  # no zeros
}


@pytest.mark.parametrize("scheme", ["irregular", "filter", "channel", "column", "2:4", "1:4", "3:8"])
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.55, 0.9])
@pytest.mark.parametrize("weights", list(WEIGHTS))
def test_budget_is_the_kept_count_of_mask(scheme, ratio, weights):
    g = torch.Generator().manual_seed(5)
    for layer in layers(scheme, ratio=None if ":" in scheme else ratio):
        w = WEIGHTS[weights](layer.param.shape, g)
        assert int(layer.mask(w).sum()) == layer.budget, layer.name
        assert int(torch.count_nonzero(layer.project(w))) == layer.budget, layer.name


def test_n_m_ties_keep_the_lowest_index_in_each_group():
    w = torch.tensor([
        [1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 2.0, -2.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        [-4.0, 4.0, 0.5, -4.0, 0.0, 0.0, 0.0, 7.0, 1.0, 2.0, 3.0, 4.0, 5.0, 5.0, -5.0, 5.0],
    ])
    fc = nn.Linear(16, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(w)
    cases = {
        "2:4": [[0, 1, 5, 6, 8, 9, 12, 13], [0, 1, 4, 7, 10, 11, 12, 13]],
        "1:4": [[0, 5, 8, 12], [0, 7, 11, 12]],
        "3:4": [[0, 1, 2, 5, 6, 7, 8, 9, 10, 12, 13, 14], [0, 1, 3, 4, 5, 7, 9, 10, 11, 12, 13, 14]],
        "3:8": [[5, 6, 7, 8, 9, 10], [0, 1, 7, 12, 13, 14]],
    }
    for scheme, kept in cases.items():
        (layer,) = SparsityConfig.from_dict({"prune_ratios": {"weight": {"scheme": scheme}}}).resolve(fc)
        mask = layer.mask()
        assert [row.nonzero().squeeze(1).tolist() for row in mask] == kept, scheme
        assert int(mask.sum()) == layer.budget


@pytest.mark.parametrize("kind,kept", [("filter", (3, 0)), ("channel", (4, 1)), ("column", (36, None))])
def test_group_ties_keep_the_lowest_index(kind, kept):
    w = torch.ones(6, 8, 3, 3)
    mask = sparsity_mask(w, kind, 0.5)
    count, dim = kept
    if kind == "column":
        columns = mask.reshape(6, -1)
        assert columns[:, :count].all() and not columns[:, count:].any()
    else:
        index = [slice(None)] * 4
        index[dim] = slice(0, count)
        assert mask[tuple(index)].all() and int(mask.sum()) == count * w.numel() // w.shape[dim]


# boundary values -----------------------------------------------------------------------------
def test_ratio_one_is_refused_and_zero_keeps_everything():
    with pytest.raises(ConfigError, match=r"= 1.0 is outside \[0, 1\)"):
        SparsityConfig.from_dict({"prune_ratios": {"fc.weight": 1.0}})
    with pytest.raises(ConfigError, match=r"outside \[0, 1\)"):
        SparsityConfig.from_dict({"prune_ratios": {"fc.weight": {"ratio": 1.0, "scheme": "filter"}}})
    for layer in layers("irregular", ratio=0.0):
        assert layer.budget == layer.param.numel() and bool(layer.mask().all())
    # round(79.92) = 80: a ratio just below 1 would keep nothing, which is refused (the layer would be emptied)
    with pytest.raises(ConfigError, match=r"'fc.weight' would keep 0 of its 80 weights at ratio 0.999"):
        SparsityConfig.from_dict({"prune_ratios": {"fc.weight": 0.999}}).resolve(TwoLayers())
    (last,) = SparsityConfig.from_dict({"prune_ratios": {"fc.weight": 0.9875}}).resolve(TwoLayers())
    assert last.budget == 1  # the largest ratio that keeps one weight


@pytest.mark.parametrize("hyper,message", [
    ({"r": 0.0}, "r = 0.0 must lie in"),
    ({"r": 1.0}, "r = 1.0 must lie in"),
    ({"M": 1.0}, "M = 1.0 must be > 1"),
    ({"s0": 0.0}, "s0 = 0.0 must be positive"),
    ({"rho": 0.0}, "rho = 0.0 must be positive"),
    ({"update_every": 0}, "update_every = 0 must be a positive integer"),
])
def test_slr_boundary_values_are_refused(hyper, message):
    with pytest.raises(ConfigError, match=message):
        SLR(TwoLayers(), {"prune_ratios": {"fc.weight": 0.5}}, **hyper)


def test_values_just_inside_the_boundaries_are_accepted():
    pruner = SLR(TwoLayers(), {"prune_ratios": {"fc.weight": 0.5}}, rho=1e-9, s0=1e-12, M=1.001, r=1e-6, update_every=1)
    assert (pruner.M, pruner.r, pruner.s0, pruner.rho, pruner.update_every) == (1.001, 1e-6, 1e-12, 1e-9, 1)
    assert pruner.s == [1e-12]
    assert ADMM(TwoLayers(), {"prune_ratios": {"fc.weight": 0.5}}, rho=1e-9).rho == 1e-9
    pruner = SLR(TwoLayers(), {"prune_ratios": {"fc.weight": 0.5}}, r=0.999999)
    assert pruner.r == 0.999999


@pytest.mark.parametrize("text", ["0:4", "4:4", "5:4", "2:0"])
def test_n_m_boundaries_are_refused(text):
    with pytest.raises(ConfigError, match="0 < N < M"):
        Scheme.parse(text)


def test_n_m_just_inside_the_boundaries():
    assert Scheme.parse(" 1 : 4 ") == Scheme("nm", 1, 4)
    assert Scheme.parse("3:4").nm_ratio == 0.25
    assert str(Scheme.parse("3:4")) == "3:4" and str(Scheme.parse("Filter")) == "filter"


def test_target_rate_one_is_accepted_and_below_one_refused():
    (conv, fc) = SparsityConfig.from_dict({"target_rate": 1.0}).resolve(TwoLayers())
    assert conv.ratio == fc.ratio == 0.0
    with pytest.raises(ConfigError, match="target_rate = 0.99 must be a number >= 1"):
        SparsityConfig.from_dict({"target_rate": 0.99})


# top-k ties on large tensors (the bracketed CPU path) ----------------------------------------
def reference_topk(scores: torch.Tensor, k: int) -> torch.Tensor:
    order = torch.sort(scores, descending=True, stable=True).indices[:k]
    expected = torch.zeros(scores.numel(), dtype=torch.bool)
    expected[order] = True
    return expected


@pytest.mark.parametrize("total", [300_000, 5_000])
def test_topk_when_k_lands_exactly_on_a_tie_level(total):
    """k equal to the count of entries above a level (and above or at it): every entry of the
    level is out (or in), none partly."""
    g = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 40, (total,), generator=g).float()
    for level in (1.0, 20.0, 38.0):
        for k in (int((scores > level).sum()), int((scores >= level).sum()), int((scores > level).sum()) + 1):
            mask = topk_mask(scores, k)
            assert int(mask.sum()) == k
            assert torch.equal(mask, reference_topk(scores, k)), (level, k)


# which groups are kept, on a weight where no dimension has size 1 ---------------------------------
@pytest.mark.parametrize("kind,dims,view", [
    ("filter", (1, 2, 3), lambda keep: keep.view(6, 1, 1, 1)),
    ("channel", (0, 2, 3), lambda keep: keep.view(1, 8, 1, 1)),
    ("column", (0,), lambda keep: keep.view(1, 8, 3, 3)),
])
def test_group_masks_keep_the_groups_of_largest_norm(kind, dims, view):
    g = torch.Generator().manual_seed(11)
    w = torch.randn(6, 8, 3, 3, generator=g)
    norms = w.square().sum(dim=dims)  # one score per filter / channel / (in, kh, kw) column
    keep = torch.zeros(norms.numel(), dtype=torch.bool)
    keep[torch.argsort(norms.reshape(-1), descending=True)[: keep.numel() - round(0.3 * keep.numel())]] = True
    mask = sparsity_mask(w, kind, 0.3)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    assert torch.equal(mask, view(keep.reshape(norms.shape)).expand_as(w))


@pytest.mark.parametrize("scheme", ["irregular", "filter", "channel", "column", "2:4"])
def test_masks_are_boolean_of_the_weight_shape(scheme):
    for layer in layers(scheme, ratio=None if ":" in scheme else 0.5):
        mask = layer.mask()
        assert mask.dtype == torch.bool and mask.shape == layer.param.shape


def test_n_m_on_a_vector_groups_consecutive_entries():
    w = torch.tensor([1.0, -3.0, 2.0, 0.5, 4.0, 4.0, -4.0, 1.0])
    assert sparsity_mask(w, "2:4", 0.0).tolist() == [False, True, True, False, True, True, False, False]
    with pytest.raises(ConfigError, match="multiple of 4"):
        sparsity_mask(torch.ones(6), "2:4", 0.0)


def test_group_schemes_refuse_a_vector():
    with pytest.raises(ConfigError, match="at least 2 dimensions, got shape \\(8,\\)"):
        sparsity_mask(torch.ones(8), "filter", 0.5)


@pytest.mark.parametrize("k", [3_000, 30_000, 150_000, 270_000])
def test_the_sampled_bracket_holds_the_kth_value_on_random_weights(k):
    """On ordinary weights and a k away from the ends, the sampled bracket is used, not the fallback,
    and it is exact."""
    from core.pruning.projections import _bracketed_topk_mask

    scores = torch.randn(300_000, generator=torch.Generator().manual_seed(4)).abs()
    mask = _bracketed_topk_mask(scores, k)
    assert mask is not None
    assert torch.equal(mask, reference_topk(scores, k))
