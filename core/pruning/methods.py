"""Pruning methods by name: SLR and ADMM, and the peers they are compared with.

Every method builds a *pruner* with the interface of :class:`core.DualPruner` that the pipeline
drives: ``attach(optimizer)``, ``update(loss)`` once per epoch, ``hard_prune() -> Masks``,
``names``, ``history``, ``state_dict()`` / ``load_state_dict()``, ``detach()``. The same
masked retraining then follows every method.

A method whose pruner runs its own training loop (NNI's ``ADMMPruner.compress()``) is registered
with ``owns_loop=True`` and its pruner provides ``run_prune_stage(train_epoch, epochs)``; the
pipeline then hands it a function that trains and evaluates one epoch instead of looping itself.

Adding a method is one line here: its name, its pruner (a class or factory, or ``"module:name"``
imported on first use) whose keyword defaults are its hyperparameters, a summary, and the
schedule keys it takes.

Methods whose optional dependency is missing stay registered; :func:`unavailable_reason` says
why one cannot run, so a grid can skip it with one line instead of failing.
"""
from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import ConfigError, UserError

__all__ = ["SCHEDULE_KEYS", "MethodSpec", "MissingDependency", "register_method", "method_names", "get_method", "unavailable_reason", "build_pruner"]


class MissingDependency(UserError):
    """A method's optional dependency is not installed."""


SCHEDULE_KEYS = ("epochs", "update_every")  # run-schedule settings a pruner may take besides its hyperparameters
_NOT_HYPERPARAMETERS = {"self", "model", "config", "variant", "patched", *SCHEDULE_KEYS}


@dataclass(frozen=True)
class MethodSpec:
    """A pruning method: how to build its pruner, and its hyperparameters with their defaults.

    ``hyperparameters`` is read from the signature of ``pruner`` (the class or factory): every
    keyword argument with a default except the model, the sparsity config and the run-schedule
    keys (:data:`SCHEDULE_KEYS`), which the pruner gets when it names them in ``schedule``. So a
    method's hyperparameters and defaults are written once, in its own signature, and configs,
    recipes and results files take them from here.
    """

    name: str
    pruner: Callable[..., Any] | str  # (model, config, **fixed, **hyperparameters, **schedule) -> pruner, or "module:name"
    summary: str
    fixed: Mapping[str, Any] = field(default_factory=dict)  # arguments that make the variant, e.g. variant="authors"
    schedule: tuple[str, ...] = ()  # of SCHEDULE_KEYS
    owns_loop: bool = False  # the pruner runs its own pruning loop: run_prune_stage(train_epoch, epochs)
    requires: str | None = None  # importable module the method needs (an optional extra)
    install: str = ""  # how to install it

    @property
    def factory(self) -> Callable[..., Any]:
        """The pruner class or factory (a ``"module:name"`` string is imported on first use)."""
        if callable(self.pruner):
            return self.pruner
        module, _, name = self.pruner.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Name -> default of every hyperparameter the method takes, in signature order."""
        params = inspect.signature(self.factory).parameters.values()
        return {p.name: p.default for p in params
                if p.default is not inspect.Parameter.empty and p.name not in _NOT_HYPERPARAMETERS and p.name not in self.fixed}

    def build(self, model, config, **settings):
        """The pruner for ``model``: ``settings`` are hyperparameters and schedule keys (others are an error)."""
        unknown = sorted(set(settings) - set(self.hyperparameters) - set(self.schedule))
        if unknown:
            raise ConfigError(f"method '{self.name}' takes no {', '.join(unknown)}; its hyperparameters are "
                              f"{', '.join(self.hyperparameters) or 'none'}")
        return self.factory(model, config, **self.fixed, **settings)


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> None:
    """Add (or replace) a method under ``spec.name`` (lower case)."""
    _METHODS[spec.name.lower()] = spec


def method_names() -> list[str]:
    """Registered method names, in registration order (slr, admm first)."""
    return list(_METHODS)


def get_method(name: str) -> MethodSpec:
    spec = _METHODS.get(str(name).lower())
    if spec is None:
        raise ConfigError(f"unknown pruning method '{name}'; use one of {', '.join(_METHODS)}")
    return spec


def unavailable_reason(name: str) -> str | None:
    """Why ``name`` cannot run here (its optional dependency is missing), or ``None``."""
    spec = get_method(name)
    if spec.requires and importlib.util.find_spec(spec.requires) is None:
        return f"{spec.name} needs the optional package '{spec.requires}', which is not installed ({spec.install})"
    return None


def build_pruner(method: str, model, config, **settings):
    """The pruner of ``method`` for ``model``; ``settings`` the method does not take are ignored
    (a recipe holds the run's schedule keys whether the method uses them or not)."""
    spec = get_method(method)
    reason = unavailable_reason(spec.name)
    if reason:
        raise MissingDependency(reason)
    known = {*spec.hyperparameters, *spec.schedule}
    return spec.build(model, config, **{k: v for k, v in settings.items() if k in known})


def _gradual_magnitude(model, config, epochs: int | None = None, update_every: int = 1, initial_sparsity: float = 0.0):
    """GMP whose sparsity rises to its target over the pruning epochs' update() calls."""
    from .magnitude import GradualMagnitude

    if epochs is None:  # a schedule key the pipeline always passes; a library caller must name it
        raise ConfigError("gmp needs epochs=N, the number of update() calls over which the sparsity rises to its target")
    return GradualMagnitude(model, config, steps=max(int(epochs) // int(update_every), 1), update_every=update_every,
                            initial_sparsity=initial_sparsity)


def _nni_admm(model, config, rho: float = 0.1, epochs: int = 1, patched: bool = True):
    from .nni_admm import NNIADMM  # imports NNI only when the method is built

    return NNIADMM(model, config, rho=rho, epochs=epochs, patched=patched)


_NNI_INSTALL = "pip install -r requirements-peers.txt, then pip install --no-deps nni==2.10.1; or make install-peers"
_AUTHORS = "as the authors' public code computes it (core/pruning/authors.py, docs/fidelity.md)"

for _spec in (
    MethodSpec("slr", "core.pruning.slr:SLR", "Surrogate Lagrangian Relaxation (Gurevin et al., 2021)", schedule=("update_every",)),
    MethodSpec("admm", "core.pruning.admm:ADMM", "ADMM (Zhang et al., 2018), this project's implementation", schedule=("update_every",)),
    MethodSpec("slr_authors", "core.pruning.slr:SLR", f"SLR {_AUTHORS}", fixed={"variant": "authors"}, schedule=("update_every",)),
    MethodSpec("admm_authors", "core.pruning.admm:ADMM", f"ADMM {_AUTHORS}", fixed={"variant": "authors"}, schedule=("update_every",)),
    MethodSpec("magnitude", "core.pruning.magnitude:GlobalMagnitude", "one-shot global magnitude pruning (torch.nn.utils.prune.global_unstructured) at the end of the pruning epochs"),
    MethodSpec("gmp", _gradual_magnitude, "gradual magnitude pruning, cubic schedule (Zhu & Gupta, 2017)", schedule=("epochs", "update_every")),
    MethodSpec("nni_admm", _nni_admm, "NNI 2.10.1 ADMMPruner, with this project's PyTorch-2 gradient shim", schedule=("epochs",),
               owns_loop=True, requires="nni", install=_NNI_INSTALL),
    MethodSpec("nni_admm_raw", _nni_admm, "NNI 2.10.1 ADMMPruner as shipped (no shim; NaN weights under PyTorch 2)", fixed={"patched": False},
               schedule=("epochs",), owns_loop=True, requires="nni", install=_NNI_INSTALL),
):
    register_method(_spec)
