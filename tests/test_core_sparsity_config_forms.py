"""A sparsity config written out by ``to_dict`` reads back to the same layers; ``uniform``."""
import torch
from torch import nn

from core import SparsityConfig


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(4, 8, 3), nn.Flatten(), nn.Linear(8, 4))


def resolved(config: SparsityConfig) -> list[tuple[str, float, str]]:
    return [(l.name, l.ratio, str(l.scheme)) for l in config.resolve(model())]


def test_to_dict_of_ratios_is_the_authors_form():
    config = SparsityConfig.from_dict({"prune_ratios": {"0.weight": 0.8, "2.weight": {"scheme": "2:4"}}, "scheme": "filter"})
    data = config.to_dict()
    assert data == {"prune_ratios": {"0.weight": 0.8, "2.weight": {"scheme": "2:4"}}, "scheme": "filter"}
    assert resolved(SparsityConfig.from_dict(data)) == resolved(config) == [("0.weight", 0.8, "filter"), ("2.weight", 0.5, "2:4")]


def test_to_dict_of_a_target_rate_keeps_include_and_exclude():
    config = SparsityConfig.from_dict({"target_rate": 4.0, "include": ["*.weight"], "exclude": ["2.weight"]})
    data = config.to_dict()
    assert data == {"prune_ratios": {}, "scheme": "irregular", "target_rate": 4.0, "include": ["*.weight"], "exclude": ["2.weight"]}
    assert resolved(SparsityConfig.from_dict(data)) == resolved(config) == [("0.weight", 0.75, "irregular")]


def test_uniform_gives_every_match_the_same_ratio_and_scheme():
    assert resolved(SparsityConfig.uniform(0.25, scheme="channel")) == [("0.weight", 0.25, "channel"), ("2.weight", 0.25, "channel")]
    # a glob selects weights with >= 2 dims; a 1-D parameter is pruned only when named exactly
    assert resolved(SparsityConfig.uniform(0.5, include=("0.*",))) == [("0.weight", 0.5, "irregular")]
    assert resolved(SparsityConfig.uniform(0.5, include=("0.*", "0.bias"))) == [("0.weight", 0.5, "irregular"), ("0.bias", 0.5, "irregular")]
