"""Pruning methods by name: SLR and ADMM, and the peers they are compared with.

Every method builds a *pruner* with the interface of :class:`core.DualPruner` that the pipeline
drives: ``attach(optimizer)``, ``update(loss)`` once per epoch, ``hard_prune() -> Masks``,
``names``, ``history``, ``state_dict()`` / ``load_state_dict()``, ``detach()``. The same
masked retraining then follows every method.

A pruner that runs its own training loop (NNI's ``ADMMPruner.compress()``) sets
``owns_loop = True`` and provides ``run_prune_stage(train_epoch, epochs)``; the pipeline then
hands it a function that trains and evaluates one epoch instead of looping itself.

Methods whose optional dependency is missing stay registered; :func:`unavailable_reason` says
why one cannot run, so a grid can skip it with one line instead of failing.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError, UserError

__all__ = ["MethodSpec", "MissingDependency", "register_method", "method_names", "get_method", "unavailable_reason", "build_pruner"]


class MissingDependency(UserError):
    """A method's optional dependency is not installed."""


@dataclass(frozen=True)
class MethodSpec:
    """A pruning method: how to build its pruner and which recipe keys it takes."""

    name: str
    build: Callable[..., Any]  # (model, config, **hyper) -> pruner
    hyper: tuple[str, ...]  # recipe keys passed on: rho, s0, M, r, update_every, epochs
    summary: str
    requires: str | None = None  # importable module the method needs (an optional extra)
    install: str = ""  # how to install it


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


def build_pruner(method: str, model, config, **hyper):
    """The pruner of ``method`` for ``model``; hyperparameters the method does not take are ignored."""
    spec = get_method(method)
    reason = unavailable_reason(spec.name)
    if reason:
        raise MissingDependency(reason)
    return spec.build(model, config, **{k: v for k, v in hyper.items() if k in spec.hyper})


def _slr(model, config, **hyper):
    from .slr import SLR

    return SLR(model, config, **hyper)


def _admm(model, config, **hyper):
    from .admm import ADMM

    return ADMM(model, config, **hyper)


def _slr_authors(model, config, **hyper):
    from .slr import SLR

    return SLR(model, config, variant="authors", **hyper)


def _admm_authors(model, config, **hyper):
    from .admm import ADMM

    return ADMM(model, config, variant="authors", **hyper)


def _global_magnitude(model, config, **hyper):
    from .magnitude import GlobalMagnitude

    return GlobalMagnitude(model, config, **hyper)


def _gradual_magnitude(model, config, epochs: int | None = None, update_every: int = 1):
    from .magnitude import GradualMagnitude

    if epochs is None:
        raise ConfigError("gmp needs epochs=N, the number of update() calls over which the sparsity rises to its target")
    return GradualMagnitude(model, config, steps=max(int(epochs) // int(update_every), 1), update_every=update_every)


def _nni_admm(patched: bool):
    def build(model, config, **hyper):
        from .nni_admm import NNIADMM

        return NNIADMM(model, config, patched=patched, **hyper)

    return build


_NNI_INSTALL = "pip install -r requirements-peers.txt, then pip install --no-deps nni==2.10.1; or make install-peers"

for _spec in (
    MethodSpec("slr", _slr, ("rho", "s0", "M", "r", "update_every", "amplify"), "Surrogate Lagrangian Relaxation (Gurevin et al., 2021)"),
    MethodSpec("admm", _admm, ("rho", "update_every", "amplify"), "ADMM (Zhang et al., 2018), this project's implementation"),
    MethodSpec("slr_authors", _slr_authors, ("rho", "s0", "M", "r", "update_every", "amplify"),
               "SLR as the authors' public code computes it (core/authors.py, docs/fidelity.md)"),
    MethodSpec("admm_authors", _admm_authors, ("rho", "update_every", "amplify"),
               "ADMM as the authors' public code computes it (core/authors.py, docs/fidelity.md)"),
    MethodSpec("magnitude", _global_magnitude, (), "one-shot global magnitude pruning (torch.nn.utils.prune.global_unstructured) at the end of the pruning epochs"),
    MethodSpec("gmp", _gradual_magnitude, ("epochs", "update_every"), "gradual magnitude pruning, cubic schedule (Zhu & Gupta, 2017)"),
    MethodSpec("nni_admm", _nni_admm(True), ("rho", "epochs"), "NNI 2.10.1 ADMMPruner, with this project's PyTorch-2 gradient shim",
               requires="nni", install=_NNI_INSTALL),
    MethodSpec("nni_admm_raw", _nni_admm(False), ("rho", "epochs"), "NNI 2.10.1 ADMMPruner as shipped (no shim; NaN weights under PyTorch 2)",
               requires="nni", install=_NNI_INSTALL),
):
    register_method(_spec)
