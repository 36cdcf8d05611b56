"""The peers of SLR/ADMM: one-shot global and gradual magnitude pruning, NNI's ADMMPruner (when
installed), the method registry, and the peers table drawn from results files made here."""
import math

import pytest
import torch
from torch import nn

from core import SLR, ConfigError, SparsityConfig, build_pruner, unavailable_reason
from examples.digits_demo import DigitsTask
from core.pruning.magnitude import GlobalMagnitude, GradualMagnitude, gradual_sparsity
from core.pruning.methods import MissingDependency, method_names
from core.pruning.nni_admm import nni_config_list
from core.harness.pipeline import PruningRecipe, TrainingDiverged, run_pipeline
from core.pruning.projections import keep_count, topk_mask
from core.harness.results import read_results

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HIDDEN = {"target_rate": 4.0, "include": ["0.weight", "2.weight"]}


def conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4 * 4, 10))


CONV_CFG = {"target_rate": 5.0, "include": ["*.weight"], "exclude": ["0.weight"]}


# one-shot global magnitude -----------------------------------------------------------------
def test_global_magnitude_is_the_global_top_k_with_slrs_budget():
    model = conv_net()
    params = [model[2].weight, model[5].weight]
    before = [p.detach().clone() for p in params]
    pruner = GlobalMagnitude(model, CONV_CFG)
    slr_layers = SparsityConfig.from_dict(CONV_CFG).resolve(conv_net())
    budget = sum(keep_count(l.param.numel(), l.ratio) for l in slr_layers)
    assert pruner.budget == budget == sum(l.budget for l in SLR(conv_net(), CONV_CFG).layers)
    masks = pruner.hard_prune()

    # brute force: sort every |w| of both layers together and keep the `budget` largest
    flat = torch.cat([b.abs().flatten() for b in before])
    order = torch.argsort(flat, descending=True)
    expected = torch.zeros_like(flat, dtype=torch.bool)
    expected[order[:budget]] = True
    got = torch.cat([m.flatten() for m in masks.masks])
    assert torch.equal(got, expected)
    assert torch.equal(got, topk_mask(flat, budget))  # our own projection, over the concatenation
    assert sum(masks.kept().values()) == budget
    # per layer the ratios differ from the config's (that is what global means) ...
    per_layer_ours = [int(l.mask(b).sum()) for l, b in zip(slr_layers, before)]
    assert sum(per_layer_ours) == budget and list(masks.kept().values()) != per_layer_ours
    # ... and torch's reparametrization is gone: the same Parameter objects, holding W * mask
    assert model[2].weight is params[0] and model[5].weight is params[1]
    assert not hasattr(model[2], "weight_orig") and not hasattr(model[2], "weight_mask")
    for p, b, m in zip(params, before, masks.masks):
        assert torch.equal(p.detach(), b * m)


def test_global_magnitude_refuses_structured_schemes():
    with pytest.raises(ConfigError, match="irregular"):
        GlobalMagnitude(conv_net(), {**CONV_CFG, "scheme": "filter"})


# gradual magnitude ---------------------------------------------------------------------------
def test_cubic_schedule_against_hand_computed_values():
    # s_k = s_f + (s_i - s_f) (1 - k/n)^3 with s_f = 0.8, n = 4
    assert [gradual_sparsity(k, 4, 0.8) for k in range(6)] == pytest.approx([0.0, 0.4625, 0.7, 0.7875, 0.8, 0.8])
    assert gradual_sparsity(2, 4, 0.8, initial=0.2) == pytest.approx(0.8 - 0.6 * 0.125)  # 0.725
    assert gradual_sparsity(-3, 4, 0.8) == 0.0
    with pytest.raises(ConfigError):
        gradual_sparsity(1, 0, 0.8)


def test_gradual_pruner_reaches_each_scheduled_sparsity_and_masks_hold():
    model = nn.Sequential(nn.Linear(20, 40), nn.ReLU(), nn.Linear(40, 10))
    torch.manual_seed(1)
    cfg = {"prune_ratios": {"0.weight": 0.8, "2.weight": 0.5}}
    pruner = GradualMagnitude(model, cfg, steps=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    pruner.attach(optimizer)
    x, y = torch.randn(64, 20), torch.randint(0, 10, (64,))
    previous = None
    for k in range(1, 5):
        for _ in range(5):  # train between updates: pruned weights must stay exactly zero
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            if previous is not None:
                assert all(not p[~m].any() for p, m in zip(pruner.params, previous))
        record = pruner.update(1.0)
        hand = {"0.weight": 0.8 * (1 - (1 - k / 4) ** 3), "2.weight": 0.5 * (1 - (1 - k / 4) ** 3)}
        for name, p in zip(pruner.names, pruner.params):
            assert int(torch.count_nonzero(p)) == keep_count(p.numel(), hand[name])
        assert record["sparsity_per_layer"] == pytest.approx(hand)
        current = [m.clone() for m in pruner.masks.masks]
        if previous is not None:  # a weight once pruned stays pruned
            assert all(not (c & ~p).any() for c, p in zip(current, previous))
        previous = current
    assert [int(v) for v in torch.tensor([m.sum() for m in previous])] == [keep_count(800, 0.8), keep_count(400, 0.5)]
    masks = pruner.hard_prune()
    assert [torch.equal(a, b) for a, b in zip(masks.masks, previous)] == [True, True]
    assert not optimizer._optimizer_step_pre_hooks  # hard_prune detached the masking hooks


def test_gradual_pruner_state_resumes_its_masks():
    model = nn.Sequential(nn.Linear(20, 40))
    first = GradualMagnitude(model, {"prune_ratios": {"0.weight": 0.9}}, steps=3)
    first.update(0.5)
    second = GradualMagnitude(model, {"prune_ratios": {"0.weight": 0.9}}, steps=3)
    second.load_state_dict(first.state_dict())
    assert second.k == 1 and torch.equal(second.masks.masks[0], first.masks.masks[0])
    assert second.ratios(2) == pytest.approx([0.9 * (1 - (1 / 3) ** 3)])


# the pipeline: the same masked retraining after every method ---------------------------------
@pytest.fixture(scope="module")
def digits():
    return DigitsTask(dense_epochs=2)


def _recipe(method, seed=0, **kw):
    return PruningRecipe(method=method, sparsity=HIDDEN, epochs=3, retrain_epochs=2, seed=seed, profile="smoke", **kw)


def _budgets():
    layers = SparsityConfig.from_dict(HIDDEN).resolve(DigitsTask(dense_epochs=0).new_model())
    return {l.name: l.budget for l in layers}


@pytest.mark.parametrize("method", ["magnitude", "gmp"])
def test_masks_hold_through_retraining(tmp_path, digits, method):
    results = run_pipeline(digits, _recipe(method), tmp_path, progress=False)
    on_disk = read_results(tmp_path / "results.json")
    nonzero = {row["name"]: row["nonzero"] for row in on_disk["per_layer"]}
    budgets = _budgets()
    assert sum(nonzero.values()) == sum(budgets.values())  # retraining revived no pruned weight
    assert on_disk["achieved_compression"]["pruned_layers"] == pytest.approx(4.0, rel=1e-3)
    if method == "gmp":  # per layer, like SLR; the last schedule step already is the final sparsity
        assert nonzero == budgets
        assert on_disk["metrics"]["after_hard_pruning"] == on_disk["metrics"]["after_training"]
        sparsities = [row["sparsity"] for row in on_disk["history"] if row["stage"] == "prune"]
        total = 128 * 64 + 64 * 128
        assert sparsities == pytest.approx([1 - (total - round(0.75 * total * (1 - (1 - k / 3) ** 3))) / total for k in (1, 2, 3)], abs=1e-3)
    assert set(on_disk["stage_wall_time_s"]) == {"prune", "retrain"}
    assert sum(on_disk["stage_wall_time_s"].values()) == pytest.approx(on_disk["wall_time_s"], rel=1e-6)
    assert results["method"] == method


def test_unknown_and_unavailable_methods(monkeypatch, capsys):
    with pytest.raises(ConfigError, match="magnitude, gmp"):
        _recipe("obd")
    assert method_names()[:2] == ["slr", "admm"] and {"magnitude", "gmp", "nni_admm"} <= set(method_names())
    import core.pruning.methods as methods

    monkeypatch.setattr(methods.importlib.util, "find_spec", lambda name: None)
    assert "requirements-peers.txt" in unavailable_reason("nni_admm") and unavailable_reason("slr") is None
    with pytest.raises(ConfigError, match="epochs=N"):
        build_pruner("gmp", nn.Sequential(nn.Linear(4, 4)), {"prune_ratios": {"0.weight": 0.5}})
    assert build_pruner("gmp", nn.Sequential(nn.Linear(4, 4)), {"prune_ratios": {"0.weight": 0.5}}, epochs=6, update_every=2).steps == 3
    with pytest.raises(MissingDependency, match="nni"):
        build_pruner("nni_admm", nn.Sequential(nn.Linear(4, 4)), {"prune_ratios": {"0.weight": 0.5}})
    from core.harness.entry import _runnable

    runs = [("slr_4x_seed0", _recipe("slr")), ("nni_admm_4x_seed0", _recipe("nni_admm"))]
    assert [name for name, _ in _runnable(runs)] == ["slr_4x_seed0"]
    assert capsys.readouterr().err.strip().splitlines() == [
        f"skipping nni_admm: {unavailable_reason('nni_admm')}"]


def test_nni_sparsity_gives_this_projects_budget_exactly():
    """NNI keeps ``numel - int(sparsity * numel)``; the config list makes that our kept count."""
    model = conv_net()
    layers = SparsityConfig.from_dict({"target_rate": 8.71, "include": ["*.weight"]}).resolve(model)
    entries = nni_config_list(layers, model, rho=0.1)
    assert [e["op_names"] for e in entries] == [["0"], ["2"], ["5"]] and {e["rho"] for e in entries} == {0.1}
    for layer, entry in zip(layers, entries):
        numel = layer.param.numel()
        assert numel - int(entry["sparsity_per_layer"] * numel) == layer.budget
    with pytest.raises(ConfigError, match="Conv2d/Linear"):
        nni_config_list(SparsityConfig.from_dict({"prune_ratios": {"0.bias": 0.5}}).resolve(model), model, 0.1)


# the table ---------------------------------------------------------------------------------------
def test_peers_table_from_results_files(tmp_path, digits):
    from figures.peers import run_peers_table

    made = [run_pipeline(digits, _recipe(m, seed=s), tmp_path / "runs" / f"{m}_{s}", progress=False)
            for m, s in (("gmp", 0), ("magnitude", 0), ("magnitude", 1))]
    path = run_peers_table(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    rows = [line.split(" | ") for line in path.read_text().splitlines() if line.startswith("| mlp")]
    assert [r[3] for r in rows] == ["Global magnitude, one-shot (torch.nn.utils.prune)", "Gradual magnitude (Zhu & Gupta)"]
    magnitude = [r for r in made if r["method"] == "magnitude"]
    hard = [r["metrics"]["after_hard_pruning"]["top1"] for r in magnitude]
    mean, std = sum(hard) / 2, math.sqrt(sum((h - sum(hard) / 2) ** 2 for h in hard))  # stdev over 2 = |a - b| / sqrt 2
    assert rows[0][6] == f"{mean:.2f} ± {std:.2f}" and rows[0][-1].rstrip(" |") == "2"
    gmp = made[0]
    assert rows[1][7] == f"{gmp['metrics']['after_retraining']['top1']:.2f}"
    assert rows[1][8] == f"{gmp['achieved_compression']['pruned_layers']:.2f}×" and rows[1][9] == f"{gmp['achieved_compression']['whole_model']:.2f}×"
    assert rows[1][11] == f"{gmp['wall_time_s']:.0f}" and rows[1][10] == f"{gmp['stage_wall_time_s']['prune']:.0f}"
    assert (tmp_path / "out" / "peers.tex").is_file()


# NNI 2.10.1 (optional extra) -------------------------------------------------------------------
def _needs_nni():
    if unavailable_reason("nni_admm"):
        pytest.skip("NNI is not installed (an optional extra: make install-peers); CI runs without it")


def test_shim_gradient_is_nnis_except_at_zero():
    from core.pruning.nni_admm import zero_grad_sqrt

    x = torch.tensor([0.0, 0.25, 4.0], requires_grad=True)
    zero_grad_sqrt(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.25]  # d sqrt(n)/dn = 1 / (2 sqrt n), and 0 at n = 0
    w = torch.ones(5, requires_grad=True)
    z = w.detach().clone()
    torch.sqrt(torch.norm(w - z)).backward()  # NNI's own penalty at its start Z = W, U = 0
    assert torch.isnan(w.grad).all()  # the PyTorch-2 failure the shim exists for
    w.grad = None
    zero_grad_sqrt(torch.norm(w - z)).backward()
    assert torch.equal(w.grad, torch.zeros(5))


def test_nni_admm_through_the_pipeline(tmp_path, digits):
    _needs_nni()
    run_pipeline(digits, _recipe("nni_admm"), tmp_path, progress=False)
    on_disk = read_results(tmp_path / "results.json")
    assert {row["name"]: row["nonzero"] for row in on_disk["per_layer"]} == _budgets()  # NNI's masks, our budget, held by retraining
    assert [(r["stage"], r["epoch"]) for r in on_disk["history"]] == [("prune", 0), ("prune", 1), ("prune", 2), ("retrain", 0), ("retrain", 1)]
    assert all(math.isfinite(v["top1"]) for v in on_disk["metrics"].values())


def test_nni_admm_as_shipped_turns_weights_nan(tmp_path, digits):
    _needs_nni()
    with pytest.raises(TrainingDiverged, match="nan"):
        run_pipeline(digits, _recipe("nni_admm_raw"), tmp_path, progress=False)
