"""Issue 13: a user pruning their own model gets the right result or one clear error.

Every test goes through the public API (``import core``) only, as a user would; the case
numbers are the issue's.
"""
import warnings

import pytest
import torch
from torch import nn

from core import (ADMM, SLR, ConfigError, Masks, SparsityConfig, TrainingDiverged, compression_stats, project,
                  sparsity_mask)


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


CFG = {"prune_ratios": {"0.weight": 0.75, "2.weight": 0.5}}


def zero_grads(model: nn.Module) -> None:
    """Gradients of exactly zero, so that a step moves the weights by the penalty only."""
    for p in model.parameters():
        p.grad = torch.zeros_like(p)


def penalty_step(w: torch.Tensor, ratio: float, rho: float, lr: float) -> torch.Tensor:
    """W after one plain SGD step on zero data gradient, penalty rho (W - Proj(W)) added once."""
    return w - lr * rho * (w - project(w, "irregular", ratio))


def train_steps(model: nn.Module, optimizer, steps: int, seed: int = 0) -> float:
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(steps):
        x, y = torch.randn(16, 8, generator=g), torch.randint(0, 4, (16,), generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
    return total / steps


# case 1: double penalty ----------------------------------------------------------------------
def test_case1_attach_twice_adds_the_penalty_once():
    model = mlp()
    before = [p.detach().clone() for p in (model[0].weight, model[2].weight)]
    pruner = SLR(model, CFG, rho=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    first = pruner.attach(optimizer)
    assert pruner.attach(optimizer) is first
    zero_grads(model)
    optimizer.step()
    for w, w0, ratio in zip((model[0].weight, model[2].weight), before, (0.75, 0.5)):
        assert torch.allclose(w.detach(), penalty_step(w0, ratio, 0.5, 1.0), atol=1e-7)


def test_case1_two_optimizers_with_disjoint_parameters_each_add_their_own_penalty():
    model = mlp()
    before = [p.detach().clone() for p in (model[0].weight, model[2].weight)]
    pruner = ADMM(model, CFG, rho=0.5)
    first, second = (torch.optim.SGD(model[i].parameters(), lr=1.0) for i in (0, 2))
    pruner.attach(first)
    pruner.attach(second)
    zero_grads(model)
    first.step()
    second.step()
    for w, w0, ratio in zip((model[0].weight, model[2].weight), before, (0.75, 0.5)):
        assert torch.allclose(w.detach(), penalty_step(w0, ratio, 0.5, 1.0), atol=1e-7)


def test_case1_two_optimizers_sharing_a_pruned_parameter_are_refused():
    model = mlp()
    pruner = SLR(model, CFG)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    pruner.attach(optimizer)
    with pytest.raises(ConfigError, match="'2.weight' is already held by an attached optimizer"):
        pruner.attach(torch.optim.SGD(model[2].parameters(), lr=0.1))


def test_case1_attach_and_add_penalty_grad_are_not_both_allowed():
    model = mlp()
    pruner = SLR(model, CFG)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    pruner.attach(optimizer)
    zero_grads(model)
    with pytest.raises(ConfigError, match="attach\\(\\) or add_penalty_grad\\(\\), not both"):
        pruner.add_penalty_grad()
    other = SLR(mlp(), CFG)
    other.add_penalty_grad()
    with pytest.raises(ConfigError, match="not both"):
        other.attach(torch.optim.SGD(other.params, lr=0.1))


# case 2: forgotten or wrong attach -----------------------------------------------------------
def test_case2_update_warns_once_when_no_penalty_was_added():
    model = mlp()
    pruner = SLR(model, CFG)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # pruner.attach(optimizer) forgotten
    with pytest.warns(UserWarning, match="no penalty gradient was added since the last update") as caught:
        for _ in range(3):
            pruner.update(train_steps(model, optimizer, 2))
    assert len([w for w in caught if "no penalty" in str(w.message)]) == 1
    attached = SLR(model, CFG)
    attached.attach(optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attached.update(train_steps(model, optimizer, 2))


def test_case2_stepping_pruned_weights_without_masks_attach_is_refused():
    model = mlp()
    pruner = SLR(model, CFG)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    pruner.attach(optimizer)
    pruner.update(train_steps(model, optimizer, 2))
    masks = pruner.hard_prune()
    with pytest.raises(ConfigError, match="masks.attach\\(optimizer\\)"):
        train_steps(model, optimizer, 1)
    retrain = torch.optim.Adam(model.parameters(), lr=1e-2)  # a new optimizer is checked too
    with pytest.raises(ConfigError, match="masks.attach\\(optimizer\\)"):
        train_steps(model, retrain, 1)
    masks.attach(retrain)
    train_steps(model, retrain, 3)
    stats = compression_stats(model, pruner.names)
    assert stats.pruned_layers_nonzero == 32 + 32  # 128 * 0.25 + 64 * 0.5
    unrelated = nn.Linear(3, 3)  # other optimizers are left alone
    train_once = torch.optim.SGD(unrelated.parameters(), lr=0.1)
    unrelated(torch.randn(2, 3)).sum().backward()
    train_once.step()


@pytest.mark.parametrize("make", [lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=1e-3),
                                  lambda p: torch.optim.Adamax(p, lr=0.05, weight_decay=1e-3)])
def test_case2_attached_masks_keep_weights_and_state_at_zero(make):
    model = mlp()
    optimizer = make(model.parameters())
    train_steps(model, optimizer, 3)  # moments on every weight
    masks = SLR(model, CFG).hard_prune()
    masks.attach(optimizer)
    train_steps(model, optimizer, 20, seed=1)
    assert masks.kept() == {"0.weight": 32, "2.weight": 32}
    for p, keep in zip(masks.params, masks.masks):
        assert torch.count_nonzero(p.detach()[~keep]) == 0 and torch.count_nonzero(p.detach()[keep]) == int(keep.sum())
        for value in optimizer.state[p].values():
            if value.shape == p.shape:
                assert torch.count_nonzero(value[~keep]) == 0


def test_case2_masks_attach_refuses_an_optimizer_without_masked_parameters():
    model = mlp()
    masks = SLR(model, CFG).hard_prune()
    with pytest.raises(ConfigError, match="the optimizer holds none of the masked parameters"):
        masks.attach(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1))


# case 3: target_rate and N:M -----------------------------------------------------------------
def test_case3_nm_with_target_rate_or_an_explicit_ratio_is_refused():
    with pytest.raises(ConfigError, match="N:M scheme '2:4' fixes the ratio at 0.5"):
        SparsityConfig.from_dict({"target_rate": 8.0, "scheme": "2:4"})
    with pytest.raises(ConfigError, match="prune_ratios\\['0.weight'\\] = 0.9 next to N:M scheme '2:4'"):
        SparsityConfig.from_dict({"prune_ratios": {"0.weight": {"ratio": 0.9, "scheme": "2:4"}}})
    layers = SparsityConfig.from_dict({"scheme": "2:4", "prune_ratios": {"0.weight": 0.5}}).resolve(mlp())
    assert layers[0].ratio == 0.5


def conv_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.Conv2d(16, 24, 3), nn.Conv2d(24, 40, 1),
                         nn.Flatten(), nn.Linear(40, 10))


@pytest.mark.parametrize("scheme,target", [("irregular", 7.3), ("filter", 3.0), ("column", 5.0), ("channel", 4.0)])
def test_case3_target_rate_is_reached_for_every_scheme(scheme, target):
    model = conv_net()
    pruner = SLR(model, {"target_rate": target, "scheme": scheme})
    pruner.hard_prune()
    stats = compression_stats(model, pruner.names)
    total = stats.pruned_layers_total  # 432 + 3456 + 960 + 400 = 5248
    assert total == 5248
    if scheme == "irregular":
        assert stats.pruned_layers_nonzero == round(total / target)  # exact to one weight
    else:
        assert stats.pruned_layers_rate == pytest.approx(target, rel=0.01)


# case 4: no layer is emptied -----------------------------------------------------------------
@pytest.mark.parametrize("config,message", [
    ({"prune_ratios": {"weight": {"ratio": 0.96, "scheme": "filter"}}}, "'weight' would keep 0 of its 10 filters"),
    ({"prune_ratios": {"weight": 0.875}}, "'weight' would keep 0 of its 4 weights"),
])
def test_case4_a_ratio_that_empties_a_layer_is_refused(config, message):
    model = nn.Linear(8, 10) if "filter" in str(config) else nn.Linear(2, 2)
    with pytest.raises(ConfigError, match=message):
        SLR(model, config)


def test_case4_target_rate_keeps_every_layer_alive():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Conv2d(2, 64, 3), nn.Conv2d(64, 64, 3), nn.Flatten(), nn.Linear(64, 10))
    pruner = SLR(model, {"target_rate": 8.0, "scheme": "channel"})
    pruner.hard_prune()
    stats = compression_stats(model, pruner.names)
    assert min(row["nonzero"] for row in stats.per_layer) > 0
    assert stats.pruned_layers_rate == pytest.approx(8.0, rel=0.01)


# case 5: default selection -------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = self.bn(self.conv(x)).mean(dim=(2, 3))
        return self.head(self.norm(x))


def test_case5_default_selection_is_weights_with_two_or_more_dimensions():
    pruner = SLR(Block(), {"target_rate": 2.0, "scheme": "filter"})
    assert pruner.names == ["conv.weight", "head.weight"]


def test_case5_glob_patterns_and_uniform_skip_norm_scales():
    assert SLR(Block(), SparsityConfig.uniform(0.5, scheme="filter")).names == ["conv.weight", "head.weight"]
    assert SLR(Block(), {"prune_ratios": {"*.weight": 0.5, "norm.weight": 0.5}}).names == ["conv.weight", "norm.weight", "head.weight"]
    with pytest.raises(ConfigError, match="'\\*.bias' matches only parameters with fewer than 2 dimensions"):
        SLR(Block(), {"prune_ratios": {"*.bias": 0.5}})


def test_case5_selector_by_module_type():
    assert SLR(Block(), {"target_rate": 2.0, "module_types": ["Conv2d"]}).names == ["conv.weight"]
    cfg = SparsityConfig(target_rate=2.0, module_types=[nn.Linear, nn.LayerNorm])
    assert [layer.name for layer in cfg.resolve(Block())] == ["head.weight"]
    with pytest.raises(ConfigError, match="module_types 'Conv3d' matches no module of Block"):
        SLR(Block(), {"target_rate": 2.0, "module_types": ["Conv3d"]})


# case 6: names -------------------------------------------------------------------------------
def test_case6_wrapper_components_anywhere_in_a_name():
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    model = nn.Sequential(nn.Linear(8, 8))
    model.add_module("body", torch.compile(nn.Sequential(nn.Linear(8, 8))))
    model.add_module("tail", checkpoint_wrapper(nn.Linear(8, 4)))
    raw = [n for n, _ in model.named_parameters() if n.endswith("weight")]
    assert raw == ["0.weight", "body._orig_mod.0.weight", "tail._checkpoint_wrapped_module.weight"]
    pruner = SLR(model, {"prune_ratios": {"body.0.weight": 0.5, "tail.weight": 0.5}})
    assert pruner.names == ["body.0.weight", "tail.weight"]
    masks = Masks.from_model(model, ["body._orig_mod.0.weight", "tail.weight"])
    assert masks.names == ["body.0.weight", "tail.weight"]


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.decoder = nn.Linear(8, 10, bias=False)
        self.decoder.weight = self.embed.weight


def test_case6_tied_aliases_resolve_and_typos_are_errors():
    model = Tied()
    pruner = SLR(model, {"prune_ratios": {"decoder.weight": 0.5}})
    assert pruner.names == ["embed.weight"] and pruner.params[0] is model.embed.weight
    pruner.hard_prune()
    masks = Masks.from_model(model, ["decoder.weight"])
    assert masks.kept() == {"embed.weight": 40}
    assert compression_stats(model, ["decoder.weight"]).pruned_layers_rate == 2.0
    with pytest.raises(ConfigError, match="'decoder.wieght' is no parameter of Tied \\(did you mean 'decoder.weight'\\?\\)"):
        compression_stats(model, ["decoder.wieght"])
    with pytest.raises(ConfigError, match="'embed.wieght' is no parameter of Tied"):
        Masks.from_model(model, ["embed.wieght"])


# case 7: N:M layout of convolutions ----------------------------------------------------------
def test_case7_nm_groups_run_along_input_channels_of_a_convolution():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 8, 3, 3, generator=g)
    mask = sparsity_mask(w, "2:4", 0.5)
    # torch's semi-structured layout: the (out, kh * kw * in) matrix of the channels-last
    # weight, every run of 4 consecutive entries of a row holding at most 2 non-zeros
    groups = mask.permute(0, 2, 3, 1).reshape(6 * 3 * 3 * 2, 4)
    assert groups.sum(dim=1).tolist() == [2] * 108
    values = w.abs().permute(0, 2, 3, 1).reshape(-1, 4)
    expected = torch.zeros_like(values, dtype=torch.bool).scatter_(1, values.topk(2, dim=1).indices, True)
    assert torch.equal(groups, expected)
    with pytest.raises(ConfigError, match="'0.weight' has 6 input channels; N:M pruning with M=4 needs a multiple of 4"):
        SLR(nn.Sequential(nn.Conv2d(6, 8, 3)), {"scheme": "2:4", "prune_ratios": {"0.weight": 0.5}})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="semi-structured sparse tensors need CUDA")
def test_case7_nm_mask_of_a_convolution_converts_to_a_semi_structured_tensor():
    from torch.sparse import to_sparse_semi_structured

    conv = nn.Conv2d(64, 128, 3).cuda().half()
    masks = SLR(nn.Sequential(conv), {"scheme": "2:4", "prune_ratios": {"0.weight": 0.5}}).hard_prune()
    assert masks.kept() == {"0.weight": conv.weight.numel() // 2}
    dense = conv.weight.detach().permute(0, 2, 3, 1).reshape(128, -1).contiguous()
    assert torch.equal(to_sparse_semi_structured(dense).to_dense(), dense)


# case 8: sparse gradients --------------------------------------------------------------------
def test_case8_parameters_with_sparse_gradients_are_refused_at_construction():
    model = nn.Sequential(nn.Embedding(100, 16, sparse=True), nn.Linear(16, 4))
    with pytest.raises(ConfigError, match="'0.weight' gets sparse gradients \\(Embedding\\(sparse=True\\)\\)"):
        SLR(model, {"prune_ratios": {"*.weight": 0.5}})
    assert SLR(model, {"prune_ratios": {"1.weight": 0.5}}).names == ["1.weight"]


# case 9: losses given to update() ------------------------------------------------------------
def test_case9_update_detaches_the_loss_and_refuses_a_non_finite_one():
    model = mlp()
    pruner = SLR(model, CFG)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    pruner.attach(optimizer)
    train_steps(model, optimizer, 1)
    loss = nn.functional.cross_entropy(model(torch.randn(4, 8)), torch.tensor([0, 1, 2, 3]))
    assert loss.requires_grad
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record = pruner.update(loss)
    assert record["loss"] == pytest.approx(loss.item())
    train_steps(model, optimizer, 1)
    for bad in (torch.tensor(float("nan")), float("inf")):
        with pytest.raises(TrainingDiverged, match=r"the loss given to update\(\) is (nan|inf)"):
            pruner.update(bad)
    assert pruner.k == 1 and len(pruner.history) == 1  # a refused loss changes nothing


def test_case9_the_pipeline_and_update_raise_the_same_error():
    from core.harness.pipeline import TrainingDiverged as PipelineDiverged

    assert PipelineDiverged is TrainingDiverged
