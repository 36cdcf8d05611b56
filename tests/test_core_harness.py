"""The experiment harness (core.harness): methods' declared hyperparameters, recipes, configs,
the dense-model step, per-iteration schedulers, and the size of core's functions."""
import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from core import ConfigError
from core.harness.dense import DenseModel, build_dense_model, dense_cache_path
from core.harness.recipe import PruningRecipe, load_experiments, same_recipe
from core.harness.task import PerIteration
from core.pruning.methods import get_method
from examples.digits_demo import DigitsTask

ROOT = Path(__file__).resolve().parent.parent
SPARSITY = {"target_rate": 4.0, "include": ["0.weight", "2.weight"]}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# methods declare their hyperparameters ---------------------------------------------------------
def test_methods_declare_their_hyperparameters_with_the_papers_defaults():
    slr = {"rho": 0.1, "s0": 1e-4, "M": 200.0, "r": 0.1, "amplify": None}
    admm = {"rho": 0.1, "amplify": None}
    assert get_method("slr").hyperparameters == slr and get_method("slr_authors").hyperparameters == slr
    assert get_method("admm").hyperparameters == admm and get_method("admm_authors").hyperparameters == admm
    assert list(get_method("slr").hyperparameters) == ["rho", "s0", "M", "r", "amplify"]  # signature order
    assert get_method("gmp").hyperparameters == {"initial_sparsity": 0.0}  # epochs and update_every are schedule keys
    assert get_method("magnitude").hyperparameters == {}
    assert get_method("nni_admm").hyperparameters == {"rho": 0.1} == get_method("nni_admm_raw").hyperparameters  # not "patched"
    assert get_method("gmp").schedule == ("epochs", "update_every") and get_method("nni_admm").schedule == ("epochs",)
    assert get_method("nni_admm").owns_loop and not get_method("slr").owns_loop and not get_method("gmp").owns_loop


def test_a_method_built_with_a_hyperparameter_it_does_not_take_is_an_error():
    with pytest.raises(ConfigError, match="method 'admm' takes no s0; its hyperparameters are rho, amplify"):
        get_method("admm").build(nn.Sequential(nn.Linear(4, 4)), {"prune_ratios": {"0.weight": 0.5}}, s0=1e-4)


# recipes -----------------------------------------------------------------------------------------
def test_recipe_fills_the_methods_defaults_and_rejects_an_unknown_hyperparameter():
    recipe = PruningRecipe(method="admm", sparsity=SPARSITY, hyper={"rho": 0.3})
    assert recipe.hyper == {"rho": 0.3, "amplify": None}
    assert PruningRecipe(method="slr", sparsity=SPARSITY).hyper == get_method("slr").hyperparameters
    with pytest.raises(ConfigError, match=r"method 'admm' takes no M, s0; its hyperparameters are rho, amplify"):
        PruningRecipe(method="admm", sparsity=SPARSITY, hyper={"s0": 1e-4, "M": 200})
    with pytest.raises(ConfigError, match="takes no rho"):
        PruningRecipe(method="magnitude", sparsity=SPARSITY, hyper={"rho": 0.1})
    with pytest.raises(ConfigError, match="unknown pruning method 'obd'"):
        PruningRecipe(method="obd", sparsity=SPARSITY)


def test_recipe_build_splits_a_configs_pruning_section():
    pruning = {"epochs": 3, "retrain_epochs": 2, "eval_every": 3, "rho": 0.2, "s0": 1e-2, "M": 300, "r": 0.1}
    admm = PruningRecipe.build("admm", SPARSITY, pruning, seed=4)
    assert (admm.epochs, admm.retrain_epochs, admm.eval_every, admm.update_every, admm.seed) == (3, 2, 3, 1, 4)
    assert admm.hyper == {"rho": 0.2, "amplify": None}  # SLR's s0, M and r are left to SLR
    slr = PruningRecipe.build("slr", SPARSITY, pruning)
    assert slr.hyper == {"rho": 0.2, "s0": 1e-2, "M": 300, "r": 0.1, "amplify": None}
    assert "s0" not in admm.as_dict() and "amplify" not in admm.as_dict() and admm.as_dict()["rho"] == 0.2


def test_same_recipe_accepts_a_legacy_admm_recipe_with_slrs_keys_but_not_a_changed_rho():
    recipe = PruningRecipe(method="admm", sparsity=SPARSITY, epochs=3, hyper={"rho": 0.1})
    legacy = {**recipe.as_dict(), "s0": 1e-4, "M": 200, "r": 0.1}  # results files written before methods declared them
    assert same_recipe(recipe.as_dict(), recipe) and same_recipe(legacy, recipe)
    assert not same_recipe({**legacy, "rho": 0.5}, recipe)
    assert not same_recipe({**legacy, "epochs": 4}, recipe)
    assert not same_recipe(None, recipe)
    slr = PruningRecipe(method="slr", sparsity=SPARSITY, epochs=3)
    assert same_recipe(slr.as_dict(), slr) and not same_recipe({**slr.as_dict(), "s0": 1e-2}, slr)  # SLR's own s0 counts


# configs -----------------------------------------------------------------------------------------
CONFIG = """
model: {arch: mlp}
data: {name: digits}
methods: [admm]
rates: [4]
seeds: [0]
pruning: {epochs: 2, rho: 0.1%s}
sparsity: {include: ["0.weight"]}
optimizer: {lr: 0.01}
dense: {epochs: 1}
"""


def test_load_experiments_rejects_a_pruning_key_no_listed_method_takes(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG % ", s0: 1.0e-4")
    with pytest.raises(ConfigError, match=r"unknown pruning key\(s\) \['s0'\].*hyperparameters of admm are \['amplify', 'rho'\]"):
        load_experiments(path, "smoke")
    (experiment,) = load_experiments(path, "smoke", ["methods=[slr, admm]"])  # SLR takes s0
    assert experiment.settings["pruning"] == {"epochs": 2, "rho": 0.1, "s0": 1e-4}
    path.write_text(CONFIG % "" + "sweeps: [{rho: [0.1, 0.2], M: [100]}]\n")
    with pytest.raises(ConfigError, match=r"unknown sweep key\(s\) \['M'\]"):
        load_experiments(path, "smoke")
    path.write_text((CONFIG % "").replace("dense: {epochs: 1}\n", ""))
    with pytest.raises(ConfigError, match="the config has no 'dense'"):
        load_experiments(path, "smoke")


# the dense step ----------------------------------------------------------------------------------
def _digits(epochs: int = 1, checkpoint=None) -> DigitsTask:
    task = DigitsTask(dense_epochs=epochs)
    if checkpoint is not None:
        task.settings["dense"]["checkpoint"] = str(checkpoint)
    return task


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _filled(task: DigitsTask, value: float) -> dict[str, torch.Tensor]:
    model = task.new_model()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    return _weights(model)


def test_dense_training_is_seeded_whatever_the_callers_seed_and_leaves_its_random_state(tmp_path):
    trained = []
    for caller_seed in (1, 2):
        torch.manual_seed(caller_seed)
        before = torch.get_rng_state()
        info = DenseModel()
        trained.append(_weights(build_dense_model(_digits(), None, info)))
        assert torch.equal(torch.get_rng_state(), before)  # the caller's random state is left as it was
        assert info.source == "trained here" and len(info.losses) == 1
    assert _same(trained[0], trained[1])  # dense.seed (0), not the caller's seed, drew the weights and the batches
    other = _digits()
    other.settings["dense"]["seed"] = 1
    assert not _same(trained[0], _weights(build_dense_model(other, None)))


def test_dense_model_is_cached_and_the_cache_wins_over_training(tmp_path, monkeypatch):
    info = DenseModel()
    first = _weights(build_dense_model(_digits(), tmp_path, info))
    cache = dense_cache_path(_digits(), tmp_path)
    assert cache.is_file() and info.source == f"trained here, cached in {cache}"
    assert not cache.with_suffix(".partial.pt").exists()
    import core.harness.dense as dense

    monkeypatch.setattr(dense, "train_one_epoch", lambda *a, **k: pytest.fail("trained although the cache holds the model"))
    info = DenseModel()
    assert _same(first, _weights(build_dense_model(_digits(), tmp_path, info))) and info.source == f"{cache} (cached)"
    torch.save({"model": _filled(_digits(), 0.5)}, cache)  # what the cache holds is what is loaded
    assert _same(_filled(_digits(), 0.5), _weights(build_dense_model(_digits(), tmp_path)))
    assert dense_cache_path(_digits(epochs=2), tmp_path) != cache  # other dense settings: another cache file
    assert dense_cache_path(DigitsTask(lr=0.1, dense_epochs=1), tmp_path) != cache  # so does another learning rate


def test_a_dense_checkpoint_wins_over_the_cache(tmp_path, monkeypatch):
    checkpoint = tmp_path / "mine.pt"
    torch.save(_filled(_digits(), 0.25), checkpoint)
    task = _digits(checkpoint=checkpoint)
    (tmp_path / "cache").mkdir()
    torch.save({"model": _filled(task, 0.5)}, dense_cache_path(task, tmp_path / "cache"))  # a cache file under its digest
    import core.harness.dense as dense

    monkeypatch.setattr(dense, "train_one_epoch", lambda *a, **k: pytest.fail("trained although a checkpoint was given"))
    info = DenseModel()
    assert _same(_filled(task, 0.25), _weights(build_dense_model(task, tmp_path / "cache", info)))
    assert info.source == str(checkpoint)


def test_trained_weights_of_the_architecture_then_a_clear_error(tmp_path):
    class Pretrained(DigitsTask):
        def has_trained_weights(self):
            return True

        def new_model(self):
            model = super().new_model()
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(0.125)
            return model

    info = DenseModel()
    model = build_dense_model(Pretrained(dense_epochs=0), tmp_path, info)
    assert all(torch.all(p == 0.125) for p in model.parameters()) and info.source == "the architecture's own trained weights"
    assert not list(tmp_path.iterdir())  # nothing trained, nothing cached
    with pytest.raises(ConfigError, match=r"no dense model: set dense.checkpoint \(or --dense-checkpoint\).*dense.epochs > 0"):
        build_dense_model(_digits(epochs=0), tmp_path)


# per-iteration schedulers ------------------------------------------------------------------------
def test_per_iteration_scheduler_stops_at_total_steps():
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    # OneCycleLR raises when stepped past total_steps: PerIteration must never ask it to
    scheduler = PerIteration(torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=5), 5)
    rates = []
    for _ in range(12):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert scheduler.scheduler.last_epoch == 4 and rates[3:] == [rates[3]] * 9  # the last step's rate, held
    assert rates[3] == pytest.approx(1.0 / 25 / 1e4, rel=1e-6)  # OneCycle ends at max_lr / (div_factor * final_div_factor)
    again = PerIteration(torch.optim.lr_scheduler.OneCycleLR(torch.optim.SGD([param], lr=1.0), max_lr=1.0, total_steps=5), 5)
    again.load_state_dict(scheduler.state_dict())
    again.step()
    assert again.scheduler.last_epoch == 4


# the size of core's functions --------------------------------------------------------------------
def test_no_function_in_core_is_longer_than_80_lines():
    long = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1  # from ``def`` to the end of the body
                if lines > 80:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_the_loop_reports_the_mean_loss_and_the_training_accuracy_over_samples():
    """Two batches of 3 and 1 samples: the loss is the sample-weighted mean, the accuracy the hits
    over everything counted (not the mean of per-batch accuracies)."""
    import torch
    from torch import nn

    from core.harness.loop import train_one_epoch
    from core.harness.task import BatchResult, PipelineTask

    class Fixed(PipelineTask):
        task, model_name, dataset_name, primary_metric = "t", "m", "d", "acc"
        settings: dict = {}

        def train_batches(self, stage, epoch, seed):
            return [(1.0, 3, 3, 4), (5.0, 1, 0, 6)]  # loss, samples, correct, counted

        def batch_loss(self, net, batch):
            loss, samples, correct, counted = batch
            return BatchResult(net.weight.sum() * 0 + loss, samples, correct, counted)

    model = nn.Linear(1, 1)
    stats = train_one_epoch(Fixed(), model, torch.optim.SGD(model.parameters(), lr=0.0), None, 0, "prune", 0)
    assert stats.loss == pytest.approx((1.0 * 3 + 5.0 * 1) / 4) and stats.accuracy == pytest.approx(100 * 3 / 10)
    Fixed.max_batches = 1  # --max-batches ends the epoch early
    stats = train_one_epoch(Fixed(), model, torch.optim.SGD(model.parameters(), lr=0.0), None, 0, "prune", 0)
    assert stats.loss == pytest.approx(1.0) and stats.accuracy == pytest.approx(75.0)
