"""Edges of the core API: defaults, records without a loss, exact ties in the surrogate condition,
foreign checkpoints and masks, the routing of large top-k selections, and config errors that
name what is wrong."""
import re

import pytest
import torch
from torch import nn

import core.pruning.projections as projections
from core import ADMM, SLR, CheckpointError, ConfigError, Masks, SparsityConfig, sparsity_mask, topk_mask
from core.pruning.sparsity import normalize_name

# these tests call update() without training in between, which warns by design
pytestmark = pytest.mark.filterwarnings("ignore:.*no penalty gradient was added:core.errors.PruningWarning")


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(8, 6, 3)  # 432 weights
        self.fc = nn.Linear(16, 5, bias=False)  # 80 weights


CONFIG = {"prune_ratios": {"fc.weight": 0.5}}


# the pruners ----------------------------------------------------------------------------------
def test_defaults_are_the_papers():
    slr = SLR(TwoLayers(), CONFIG)
    assert (slr.rho, slr.s0, slr.M, slr.r, slr.update_every) == (0.1, 1e-4, 200.0, 0.1, 1)
    assert slr.s == [1e-4]
    admm = ADMM(TwoLayers(), CONFIG)
    assert (admm.rho, admm.update_every) == (0.1, 1)


@pytest.mark.parametrize("method", [SLR, ADMM])
def test_an_update_without_a_loss_records_none(method):
    pruner = method(TwoLayers(), CONFIG)
    record = pruner.update()
    assert record["loss"] is None and record["mixed_loss"] is None and record["accepted"] is True
    assert record["condition"] is None and pruner.k == 1


def test_a_tie_in_the_surrogate_condition_is_not_an_improvement():
    """Dyadic numbers, so both sides of eq. (11) are exactly 24.6875 (rho = 0.5, s0 = 0.5, M = 2):
    W^0 = [10, -8, 3, 4], W^1 = [6, -5, 1.5, -2]: s^1 = 0.5 * 0.5 * 5 / 2.5 = 0.5, Lambda^1 = [0, 0, 0.75, -1];
    W^2 = [6, -8, 6, -5], W^2 + Lambda^1/rho = [6, -8, 7.5, -7], Z^2 = [0, -8, 7.5, 0], W^2 - Z^2 = [6, 0, -1.5, -5]:
    left 5 + 3.875 + 0.25 * 63.25 = 24.6875, right 20 + 3.125 + 0.25 * 6.25 = 24.6875."""
    model = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[10.0, -8.0, 3.0, 4.0]]))
    pruner = SLR(model, {"prune_ratios": {"weight": 0.5}}, rho=0.5, s0=0.5, M=2, r=0.5)
    for w, loss in (([6.0, -5.0, 1.5, -2.0], 20.0), ([6.0, -8.0, 6.0, -5.0], 5.0)):
        with torch.no_grad():
            model.weight.copy_(torch.tensor([w]))
        record = pruner.update(loss)
    assert record["mixed_loss"] == record["mixed_loss_prev"] == 24.6875
    assert record["condition"] is False and pruner.s == [0.5]


def test_a_pruner_reads_its_sparsity_config_from_a_yaml_file(tmp_path):
    path = tmp_path / "ratios.yaml"
    path.write_text("prune_ratios:\n  fc.weight: 0.75\n")
    (layer,) = SLR(TwoLayers(), path).layers
    assert (layer.name, layer.ratio, layer.budget) == ("fc.weight", 0.75, 20)


def test_a_checkpoint_without_its_layer_list_is_refused():
    state = SLR(TwoLayers(), CONFIG).state_dict()
    del state["layers"]
    with pytest.raises(CheckpointError, match="other pruned layers"):
        SLR(TwoLayers(), CONFIG).load_state_dict(state)


# masks ------------------------------------------------------------------------------------------
def test_masks_for_a_parameter_the_model_lacks_are_refused():
    with pytest.raises(CheckpointError, match=r"masks name parameters the model does not have: \['head.weight'\]"):
        Masks.from_state_dict(TwoLayers(), {"head.weight": torch.ones(3, dtype=torch.bool)})


def test_masks_given_as_numbers_become_boolean():
    model = TwoLayers()
    masks = Masks.from_state_dict(model, {"fc.weight": (torch.arange(80).reshape(5, 16) % 2).to(torch.uint8)})
    assert masks.masks[0].dtype == torch.bool and masks.kept() == {"fc.weight": 40}
    masks.apply_()
    assert torch.count_nonzero(model.fc.weight[:, ::2]) == 0 and torch.count_nonzero(model.fc.weight[:, 1::2]) == 40


def test_masking_the_state_of_an_optimizer_that_has_not_stepped_is_a_no_op():
    model = TwoLayers()
    masks = SLR(model, CONFIG).hard_prune()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    masks.mask_optimizer_state_(optimizer)
    assert optimizer.state_dict()["state"] == {}


# top-k routing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("total,sampled", [(65_536, False), (65_537, True)])
def test_only_cpu_tensors_above_65536_entries_use_the_sampled_selection(monkeypatch, total, sampled):
    calls = []
    original = projections._bracketed_topk_mask
    monkeypatch.setattr(projections, "_bracketed_topk_mask", lambda flat, k: calls.append(k) or original(flat, k))
    scores = torch.randn(total, generator=torch.Generator().manual_seed(0))
    mask = topk_mask(scores, total // 3)
    assert calls == ([total // 3] if sampled else [])
    assert int(mask.sum()) == total // 3 and bool((scores[mask].min() >= scores[~mask].max()))


@pytest.mark.parametrize("k", [0, 5, 6])
def test_topk_of_nothing_or_everything_is_a_boolean_mask(k):
    mask = topk_mask(torch.arange(6.0).reshape(2, 3), k)
    assert mask.dtype == torch.bool and mask.shape == (2, 3) and int(mask.sum()) == k


@pytest.mark.parametrize("ratio", [0.0, 0.999])
def test_masks_that_keep_everything_or_nothing_are_boolean(ratio):
    mask = sparsity_mask(torch.randn(5, 16), "irregular", ratio)
    assert mask.dtype == torch.bool and int(mask.sum()) == (80 if ratio == 0.0 else 0)


def test_n_m_on_a_vector_whose_length_is_not_a_multiple_of_2m():
    w = torch.tensor([1.0, -3.0, 2.0, 0.5, 4.0, 4.0, -4.0, 1.0, 0.0, 1.0, 0.0, -1.0])
    assert sparsity_mask(w, "2:4", 0.0).nonzero().squeeze(1).tolist() == [1, 2, 4, 5, 9, 11]


def test_layer_mask_and_project_use_the_tensor_given():
    (layer,) = SparsityConfig.from_dict(CONFIG).resolve(TwoLayers())
    w = torch.arange(80.0).reshape(5, 16)
    assert torch.equal(layer.mask(w), sparsity_mask(w, "irregular", 0.5))
    assert torch.equal(layer.project(w), w * sparsity_mask(w, "irregular", 0.5))
    assert torch.equal(layer.mask(), sparsity_mask(layer.param, "irregular", 0.5))
    assert torch.equal(layer.project(), layer.param.detach() * sparsity_mask(layer.param, "irregular", 0.5))


# configs ------------------------------------------------------------------------------------------
def test_wrapper_prefixes_are_stripped_in_any_order():
    assert normalize_name("_orig_mod.module.fc.weight") == "fc.weight"
    assert normalize_name("module._orig_mod.module.fc.weight") == "fc.weight"
    assert normalize_name("fc.module.weight") == "fc.weight"  # wrapper components anywhere in a name


def test_irregular_pruning_of_a_vector_is_allowed():
    (layer,) = SparsityConfig.from_dict({"prune_ratios": {"conv.bias": 0.5}}).resolve(TwoLayers())
    assert layer.name == "conv.bias" and layer.budget == 3


def test_target_rate_true_is_not_a_number():
    with pytest.raises(ConfigError, match="target_rate = True must be a number >= 1"):
        SparsityConfig.from_dict({"target_rate": True})


def test_target_rate_that_leaves_exactly_one_weight_per_layer_is_reachable():
    (fc,) = SparsityConfig.from_dict({"target_rate": 80.0, "include": ["fc.weight"]}).resolve(TwoLayers())
    assert fc.ratio == pytest.approx(79 / 80) and fc.budget == 1


def test_unreachable_target_rate_names_the_reachable_range():
    with pytest.raises(ConfigError, match=re.escape("(reachable: 1x to about 256.0x, every layer keeping at least one of its weights)")):  # 512 weights / 2 layers
        SparsityConfig.from_dict({"target_rate": 1e6, "include": ["conv.weight", "fc.weight"]}).resolve(TwoLayers())


def test_target_rate_with_every_selected_layer_pinned_is_refused():
    config = {"target_rate": 2.0, "include": ["fc.weight"], "prune_ratios": {"fc.weight": 0.5}}
    with pytest.raises(ConfigError, match="select no parameter to prune beyond those prune_ratios names"):
        SparsityConfig.from_dict(config).resolve(TwoLayers())


def test_a_non_n_m_entry_without_a_ratio_is_refused():
    with pytest.raises(ConfigError, match=r"^the sparsity config: prune_ratios\['fc.weight'\] = None is not a number"):
        SparsityConfig.from_dict({"prune_ratios": {"fc.weight": {"scheme": "filter"}}})


def test_errors_name_the_yaml_file(tmp_path):
    path = tmp_path / "ratios.yaml"
    path.write_text("prune_ratios: {}\n")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: prune_ratios is empty"):
        SparsityConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="^the sparsity config: prune_ratios is empty"):
        SparsityConfig.from_dict({"prune_ratios": {}})
    path.write_text("prune_ratios:\n  fc.wx: 0.5\n")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: 'fc.wx' matches no parameter of TwoLayers"):
        SparsityConfig.from_yaml(path).resolve(TwoLayers())


@pytest.mark.parametrize("field", ["include", "exclude"])
def test_target_rate_patterns_that_match_nothing_name_the_config_and_the_model(field):
    config = {"target_rate": 2.0, "include": ["*.weight"], "source": "my.yaml"}
    config[field] = ["fx.wzzzz"]
    source = config.pop("source")
    with pytest.raises(ConfigError, match=r"^my\.yaml: 'fx\.wzzzz' matches no parameter of TwoLayers; names come from"):
        SparsityConfig.from_dict(config, source=source).resolve(TwoLayers())


def test_the_suggestion_for_an_unknown_name():
    with pytest.raises(ConfigError, match=r"'xfc\.w' matches no parameter of TwoLayers \(did you mean 'fc\.weight'\?\)"):
        SparsityConfig.from_dict({"prune_ratios": {"xfc.w": 0.5}}).resolve(TwoLayers())


def test_to_dict_and_uniform_name_the_default_scheme():
    assert SparsityConfig.from_dict({"prune_ratios": {"fc.weight": 0.5}}).to_dict()["scheme"] == "irregular"
    assert SparsityConfig.uniform(0.5).to_dict() == {"prune_ratios": {"*.weight": 0.5}, "scheme": "irregular"}


def test_no_masks_keep_nothing():
    assert Masks(dict(TwoLayers().named_parameters()), {}).kept() == {}
