"""Projections against brute force, exact budgets with ties, and the scheme parser."""
import itertools

import pytest
import torch

from core import ConfigError, Scheme, project, sparsity_mask, topk_mask
from core.pruning.projections import keep_count


def brute_force_residual(values: torch.Tensor, groups: list[list[int]], keep: int) -> float:
    """min over all choices of ``keep`` groups of ||w - w restricted to them||^2."""
    flat = values.reshape(-1).double()
    best = float("inf")
    for chosen in itertools.combinations(range(len(groups)), keep):
        kept = [i for g in chosen for i in groups[g]]
        residual = flat.square().sum() - flat[kept].square().sum()
        best = min(best, float(residual))
    return best


def residual(w: torch.Tensor, mask: torch.Tensor) -> float:
    return float((w.double() - w.double() * mask).square().sum())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_irregular_matches_brute_force(seed, ties):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(2, 4, generator=g)
    if ties:
        w = torch.randint(-2, 3, (2, 4), generator=g).float()
    for ratio in (0.0, 0.25, 0.5, 0.75):
        keep = keep_count(8, ratio)
        mask = sparsity_mask(w, "irregular", ratio)
        assert int(mask.sum()) == keep
        assert residual(w, mask) == pytest.approx(brute_force_residual(w, [[i] for i in range(8)], keep), abs=1e-12)


def _groups(shape, kind):
    index = torch.arange(torch.Size(shape).numel()).reshape(shape)
    if kind == "filter":
        return [index[i].reshape(-1).tolist() for i in range(shape[0])]
    if kind == "channel":
        return [index[:, i].reshape(-1).tolist() for i in range(shape[1])]
    cols = index.reshape(shape[0], -1)
    return [cols[:, j].tolist() for j in range(cols.shape[1])]


@pytest.mark.parametrize("kind", ["filter", "channel", "column"])
@pytest.mark.parametrize("ties", [False, True])
def test_group_schemes_match_brute_force(kind, ties):
    g = torch.Generator().manual_seed(3)
    shape = (5, 4, 1, 2)
    w = torch.randn(shape, generator=g)
    if ties:
        w = torch.ones(shape)
    groups = _groups(shape, kind)
    for ratio in (0.2, 0.4, 0.6):
        keep = keep_count(len(groups), ratio)
        mask = sparsity_mask(w, kind, ratio)
        kept_groups = [grp for grp in groups if mask.reshape(-1)[grp].all()]
        assert len(kept_groups) == keep
        assert int(mask.sum()) == keep * len(groups[0])  # whole groups only
        assert residual(w, mask) == pytest.approx(brute_force_residual(w, groups, keep), abs=1e-10)


@pytest.mark.parametrize("ties", [False, True])
def test_n_m_matches_brute_force(ties):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 8, generator=g) if not ties else torch.full((3, 8), 0.5)
    mask = sparsity_mask(w, "2:4", 0.0)
    for row in range(3):
        for start in (0, 4):
            block = w[row, start:start + 4]
            m = mask[row, start:start + 4]
            assert int(m.sum()) == 2
            assert residual(block, m) == pytest.approx(brute_force_residual(block, [[i] for i in range(4)], 2), abs=1e-12)


def test_ties_keep_exact_budget_and_lowest_index():
    w = torch.ones(10)
    mask = topk_mask(w, 3)
    assert mask.tolist() == [True] * 3 + [False] * 7
    w = torch.tensor([3.0, 1.0, 2.0, 2.0, 2.0, 0.0])
    assert topk_mask(w, 3).tolist() == [True, False, True, True, False, False]


def test_exact_cardinality_on_many_ties():
    g = torch.Generator().manual_seed(0)
    w = torch.randint(0, 3, (4000,), generator=g).float()
    for k in (0, 1, 999, 1333, 2000, 3999, 4000):
        assert int(topk_mask(w, k).sum()) == k


def test_project_zeroes_outside_mask_and_keeps_values():
    w = torch.tensor([[0.1, -5.0], [3.0, -0.2]])
    assert project(w, "irregular", 0.5).tolist() == [[0.0, -5.0], [3.0, 0.0]]


def test_n_m_needs_divisible_input():
    with pytest.raises(ConfigError, match="multiple of 4"):
        sparsity_mask(torch.randn(2, 6), "2:4", 0.0)


def test_scheme_parse():
    assert Scheme.parse("2:4") == Scheme("nm", 2, 4)
    assert Scheme.parse("2:4").nm_ratio == 0.5
    with pytest.raises(ConfigError, match="unknown sparsity scheme 'blocks'"):
        Scheme.parse("blocks")
    with pytest.raises(ConfigError, match="0 < N < M"):
        Scheme.parse("4:2")


@pytest.mark.parametrize("ties", [False, True])
def test_sampled_cpu_selection_equals_sort_on_large_tensors(ties):
    """Tensors above the sampling size go through the bracketed selection; it must stay exact."""
    g = torch.Generator().manual_seed(2)
    w = torch.randn(300_000, generator=g)
    if ties:
        w = torch.randint(0, 50, (300_000,), generator=g).float()
    for k in (1, 30_000, 150_001, 299_999):
        mask = topk_mask(w.abs(), k)
        order = torch.sort(w.abs(), descending=True, stable=True).indices[:k]
        expected = torch.zeros(300_000, dtype=torch.bool)
        expected[order] = True
        assert torch.equal(mask, expected)
