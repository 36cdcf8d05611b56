"""Sparsity configs (authors' YAML, globs, prefixes, target-rate solver, errors), run configs,
and compression statistics."""
import re

import pytest
import torch
from torch import nn

from core import ConfigError, SLR, SparsityConfig, compression_stats
from core.harness.config import apply_overrides, load_run_config


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3), nn.Conv2d(16, 32, 3), nn.Flatten(), nn.Linear(32, 10))


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_authors_yaml_form_with_globs_and_override(tmp_path):
    path = write(tmp_path, "prune_ratios:\n  '*.weight': 0.5\n  1.weight: 0.9\n")
    layers = SparsityConfig.from_yaml(path).resolve(model())
    assert [(l.name, l.ratio) for l in layers] == [("0.weight", 0.5), ("1.weight", 0.9), ("3.weight", 0.5)]


def test_module_prefixes_are_ignored_on_both_sides():
    wrapped = nn.Module()
    wrapped.module = model()
    layers = SparsityConfig.from_dict({"prune_ratios": {"module.1.weight": 0.8}}).resolve(wrapped)
    assert [l.name for l in layers] == ["1.weight"]
    layers = SparsityConfig.from_dict({"prune_ratios": {"1.weight": 0.8}}).resolve(wrapped)
    assert layers[0].param is wrapped.module[1].weight


def test_per_entry_scheme():
    cfg = SparsityConfig.from_dict({"prune_ratios": {"1.weight": {"ratio": 0.5, "scheme": "filter"}, "3.weight": {"scheme": "2:4"}}})
    layers = cfg.resolve(model())
    assert str(layers[0].scheme) == "filter" and layers[1].ratio == 0.5


@pytest.mark.parametrize("target", [1.96, 4.69, 8.71])
def test_target_rate_solver_reaches_the_rate(target):
    m = model()
    cfg = SparsityConfig.from_dict({"target_rate": target, "include": ["*.weight"], "exclude": ["0.weight"]})
    pruner = SLR(m, cfg)
    assert [l.name for l in pruner.layers] == ["1.weight", "3.weight"]
    pruner.hard_prune()
    stats = compression_stats(m, pruner.names)
    assert stats.pruned_layers_rate == pytest.approx(target, rel=2e-3)


def test_target_rate_with_pinned_layer():
    m = model()
    cfg = SparsityConfig.from_dict({"target_rate": 4.0, "prune_ratios": {"0.weight": 0.0}})
    layers = {l.name: l.ratio for l in cfg.resolve(m)}
    assert layers["0.weight"] == 0.0
    total = 432 + 4608 + 320
    kept = 432 + sum(round((1 - layers[n]) * c) for n, c in (("1.weight", 4608), ("3.weight", 320)))
    assert total / kept == pytest.approx(4.0, rel=2e-3)


@pytest.mark.parametrize("text,message", [
    ("prune_ratios:\n  layer9.conv1.weight: 0.5\n", "'layer9.conv1.weight' matches no parameter of Sequential"),
    ("prune_ratios:\n  1.wieght: 0.5\n", "did you mean '1.weight'"),
    ("prune_ratios:\n  1.weight: 1.5\n", r"prune_ratios\['1.weight'\] = 1.5 is outside \[0, 1\)"),
    ("prune_ratios:\n  1.weight: -0.1\n", "is outside"),
    ("prune_ratios:\n  1.weight: high\n", "is not a number"),
    ("prune_ratios: {}\n", "prune_ratios is empty"),
    ("prune_ratios:\n  1.weight: [0.5\n", "malformed YAML at line 2"),
    ("target_rate: 1000\ninclude: ['3.weight']\n", "target rate 1000x is unreachable"),
    ("target_rate: 0.5\n", "must be a number >= 1"),
    ("ratios:\n  1.weight: 0.5\n", "unknown key"),
    ("prune_ratios:\n  3.bias: {ratio: 0.5, scheme: filter}\n", "needs a 2-D or 4-D weight"),
])
def test_config_errors_name_the_problem(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        SparsityConfig.from_yaml(write(tmp_path, text)).resolve(model())


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="sparsity config not found"):
        SparsityConfig.from_yaml(tmp_path / "nope.yaml")


def test_run_config_profiles_and_overrides(tmp_path):
    path = write(tmp_path, "epochs: 40\noptim: {name: adam, lr: 0.01}\nprofiles:\n  smoke: {epochs: 2, optim: {lr: 0.1}}\n  paper: {}\n")
    smoke = load_run_config(path, "smoke")
    assert smoke["epochs"] == 2 and smoke["optim"] == {"name": "adam", "lr": 0.1} and smoke["profile"] == "smoke"
    assert load_run_config(path, "paper")["epochs"] == 40
    assert apply_overrides(smoke, ["optim.lr=0.5", "epochs=3"])["optim"]["lr"] == 0.5
    with pytest.raises(ConfigError, match="not key=value"):
        apply_overrides(smoke, ["epochs"])
    with pytest.raises(ConfigError, match="unknown profile"):
        load_run_config(path, "large")


def test_override_keys_must_exist_except_new_leaves_of_a_section():
    config = {"epochs": 40, "optim": {"name": "adam", "lr": 0.1, "weight_decay": 0.0}, "data": None}
    assert apply_overrides(config, ["optim.momentum=0.9"])["optim"]["momentum"] == 0.9  # a new setting of a section
    for override, message in [("epoch=3", "'epoch' is not a key of the config; did you mean 'epochs'"),
                              ("lr=3", "did you mean 'optim.lr'"),
                              ("optim.weight_decy=3", "'optim.weight_decy' is not a key of the config; did you mean 'optim.weight_decay'"),
                              ("optimizer.lr=3", "'optimizer' is not a section of the config"),
                              ("data.root=x", "'data' is null in the config, not a section; set it whole")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            apply_overrides(config, [override])


def test_compression_stats_hand_counted():
    m = nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 1))  # 8 + 2 + 2 + 1 = 13 parameters
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]]))  # 2 of 8
        m[0].bias.fill_(1.0)
        m[1].weight.copy_(torch.tensor([[0.0, 3.0]]))  # 1 of 2
        m[1].bias.zero_()
    stats = compression_stats(m, ["0.weight", "1.weight"])
    assert stats.pruned_layers_rate == pytest.approx(10 / 3)
    assert stats.whole_model_rate == pytest.approx(13 / 5)
    assert [(r["name"], r["nonzero"], r["rate"]) for r in stats.per_layer] == [("0.weight", 2, 4.0), ("1.weight", 1, 2.0)]
    assert "whole model" in stats.table()


def test_yaml_reads_scientific_floats_and_n_m_strings(tmp_path):
    from core.harness.config import parse_yaml

    data = parse_yaml("lr: 2e-3\ns0: 1.0e-4\nepochs: 40\nscheme: 2:4\nrate: 8.71\n")
    assert data == {"lr": 0.002, "s0": 0.0001, "epochs": 40, "scheme": "2:4", "rate": 8.71}
    assert isinstance(data["epochs"], int)
    assert apply_overrides({"optim": {}}, ["optim.lr=1e-4"])["optim"]["lr"] == 1e-4
    layers = SparsityConfig.from_yaml(write(tmp_path, "scheme: 2:4\nprune_ratios:\n  3.weight: {}\n")).resolve(model())
    assert str(layers[0].scheme) == "2:4"


def test_threads_flag_over_config_and_zero_means_default():
    import torch

    from core.harness.cli import set_threads

    before = torch.get_num_threads()
    try:
        assert set_threads(None, None) is None and set_threads(None, 0) is None
        assert torch.get_num_threads() == before
        assert set_threads(1, 3) == 1 and torch.get_num_threads() == 1  # the flag wins
        assert set_threads(None, 2) == 2 and torch.get_num_threads() == 2
        for arg, configured in ((0, None), (None, -1)):
            with pytest.raises(ConfigError, match="must be >= 1"):
                set_threads(arg, configured)
    finally:
        torch.set_num_threads(before)


def test_settings_digest_ignores_key_order_and_sees_every_value():
    from core.harness.config import settings_digest

    digest = settings_digest({"model": {"width": 0.5, "arch": "resnet18"}, "epochs": 20})
    assert re.fullmatch(r"[0-9a-f]{10}", digest)
    assert digest == settings_digest({"epochs": 20, "model": {"arch": "resnet18", "width": 0.5}})
    assert digest != settings_digest({"epochs": 20, "model": {"arch": "resnet18", "width": 0.25}})
