"""What ADMM and SLR share: duplicate variables Z, one dual tensor per layer, the penalty
gradient added inside any optimizer, hard-pruning, history and resumable state.

Both methods add the gradient of the relaxation terms of the augmented Lagrangian (eq. 6) to
``W.grad`` (eq. 8). Written as ``grad += rho * W - offset`` the per-step work is two fused
multi-tensor ops with no temporaries and no host sync; the offset only changes when Z or the
duals do, once per ``update()``:

* SLR:  Lambda + rho (W - Z)    ->  offset = rho Z - Lambda
* ADMM: rho (W - Z + U)         ->  offset = rho (Z - U)

The penalty reaches the gradients either through :meth:`DualPruner.attach` (a step pre-hook
of each optimizer, attached once each, adding it for the parameters that optimizer holds) or
through explicit :meth:`DualPruner.add_penalty_grad` calls, never both; :meth:`DualPruner.update`
warns once when no penalty was added since the previous update.
"""
from __future__ import annotations

import inspect
import math
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .ranks import mean_over_ranks
from ..errors import CheckpointError, ConfigError, PruningWarning, TrainingDiverged
from .hooks import AttachedOptimizers, HookHandles
from .masks import Masks
from .sparsity import PrunedLayer, SparsityConfig

__all__ = ["DualPruner", "as_sparsity_config", "MODEL_AND_CONFIG"]

MODEL_AND_CONFIG = """Arguments every pruner takes:
    model: any ``nn.Module``, also wrapped: DataParallel / DDP (``module.``), ``torch.compile``
        (``_orig_mod.``) or activation checkpointing (``_checkpoint_wrapped_module.``), on the
        whole model or on submodules. Parameters are matched by name with those components
        removed wherever they occur; a tied parameter may be named by any of its names and is
        pruned once.
    config: which parameters to prune and how much, in any of these forms:

        * a :class:`~core.SparsityConfig`;
        * a mapping in the YAML form, e.g. ``{"prune_ratios": {"fc.weight": 0.9}}``,
          ``{"prune_ratios": {"layer4.*.weight": {"ratio": 0.9, "scheme": "filter"}}}`` or
          ``{"target_rate": 8.71, "exclude": ["conv1.weight"], "module_types": ["Conv2d"]}``
          (keys: ``prune_ratios``, ``scheme``, ``target_rate``, ``include``, ``exclude``,
          ``module_types``);
        * a path (``str`` or ``Path``) to such a YAML file.

        Without ``include``, ``target_rate`` selects every weight with at least two dimensions
        (no biases, no BatchNorm / LayerNorm scales). Mistakes are one-line ``ConfigError`` s.
    rho: penalty coefficient of eq. (6).
    update_every: act on every N-th call of ``update()`` (calls are epochs or steps, whichever
        the caller uses); SLR averages the losses of the calls in between.

The penalty reaches the gradients through ``attach(optimizer)`` or ``add_penalty_grad()``,
not both."""


def as_sparsity_config(config: "SparsityConfig | Mapping[str, Any] | str | Path") -> SparsityConfig:
    """A :class:`SparsityConfig` from a config object, a mapping in the YAML form, or a path to a YAML file."""
    if isinstance(config, SparsityConfig):
        return config
    if isinstance(config, Mapping):
        return SparsityConfig.from_dict(config)
    return SparsityConfig.from_yaml(config)


class DualPruner(ABC):
    """Base class of :class:`~core.ADMM` and :class:`~core.SLR`.

    Use :meth:`attach` (or, in loops that need it, :meth:`add_penalty_grad`; not both), call
    :meth:`update` once per epoch, then :meth:`hard_prune` and ``masks.attach(optimizer)``.
    The accepted forms of ``model`` and ``config`` follow (subclasses repeat them).

    Args:
        rho: penalty coefficient of eq. (6).
        update_every: act on every N-th call of :meth:`update` (calls are epochs or steps,
            whichever the caller uses); SLR averages the losses of the calls in between.
        variant: ``"paper"`` (the paper's equations) or ``"authors"`` (what the authors' public
            code computes; see :mod:`core.authors` and docs/fidelity.md).
        amplify: multiply the penalty gradient by the factor the authors' non-detached duals
            give it (:mod:`core.authors`); default: on for ``"authors"``, off for ``"paper"``.
    """

    method: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Append :data:`MODEL_AND_CONFIG` to each pruner's docstring, so ``help(SLR)`` shows it."""
        super().__init_subclass__(**kwargs)
        if cls.__doc__ and MODEL_AND_CONFIG not in cls.__doc__:
            cls.__doc__ = inspect.cleandoc(cls.__doc__) + "\n\n" + MODEL_AND_CONFIG

    def __init__(self, model: nn.Module, config, rho: float = 0.1, update_every: int = 1, variant: str = "paper",
                 amplify: bool | None = None) -> None:
        from .authors import check_variant

        self.variant = check_variant(variant)
        if self.variant == "authors":  # registered as slr_authors / admm_authors
            self.method = f"{type(self).method}_authors"
        # the authors' code differentiates through its duals (core/authors.py); the paper does not
        self.amplify = (variant == "authors") if amplify is None else bool(amplify)
        if not rho > 0:
            raise ConfigError(f"rho = {rho} must be positive, e.g. 0.1")
        if int(update_every) < 1:
            raise ConfigError(f"update_every = {update_every} must be a positive integer")
        self.config = as_sparsity_config(config)
        self.layers: list[PrunedLayer] = self.config.resolve(model)
        self.names = [layer.name for layer in self.layers]
        self.params = [layer.param for layer in self.layers]
        self.rho = float(rho)
        self.update_every = int(update_every)
        with torch.no_grad():
            self.Z = [self._project(layer, p.detach()) for layer, p in zip(self.layers, self.params)]  # Z^0 = Proj_S(W^0)
            self.dual = [torch.zeros_like(p) for p in self.params]  # Lambda^0 = 0 (SLR), U^0 = 0 (ADMM)
        self.k = 0  # number of Z / dual updates done
        self.calls = 0
        self._pending_losses: list[float] = []
        self.history: list[dict[str, Any]] = []
        self._attached = AttachedOptimizers(self.params, "pruned parameters")
        self._manual = False  # add_penalty_grad() was called by the user
        self._penalized = False  # some penalty was added since the last update
        self._warned = False
        self.gain = [1.0] * len(self.layers)  # penalty-gradient factor per layer; stays 1 unless amplify
        self._refresh_offset()

    # the per-step penalty -------------------------------------------------------------------
    @abstractmethod
    def _penalty_offset(self) -> list[Tensor]:
        """``offset`` with ``penalty gradient = rho W - offset``, from Z and the duals."""

    @torch.no_grad()
    def _refresh_offset(self) -> None:
        """Recompute ``self._offset`` (scaled by ``gain`` when amplified) after Z or the duals change."""
        offset = self._penalty_offset()
        if self.amplify:
            torch._foreach_mul_(offset, self.gain)
        self._offset = offset

    def add_penalty_grad(self) -> None:
        """Add the relaxation gradient to ``.grad`` of every pruned parameter that has one.

        Call it between ``backward()`` (and AMP unscaling) and ``optimizer.step()``, once per
        step, in loops that cannot use :meth:`attach`. Use one or the other: with an attached
        optimizer this is a :class:`ConfigError` (the penalty would be added twice).
        """
        if len(self._attached):
            raise ConfigError("the penalty is added by attach() already; use attach() or add_penalty_grad(), not both")
        self._manual = True
        self._add_penalty(range(len(self.params)))

    @torch.no_grad()
    def _add_penalty(self, indices) -> None:
        """The penalty gradient for the pruned parameters at ``indices``."""
        self._penalized = True
        pairs = [(self.params[i].grad, self.params[i], self._offset[i], self.gain[i]) for i in indices if self.params[i].grad is not None]
        if not pairs:
            return
        grads, params, offsets, gains = (list(t) for t in zip(*pairs))
        if len(set(gains)) == 1:  # the paper's methods (gain 1) and every amplified method with one stepsize
            torch._foreach_add_(grads, params, alpha=self.rho * gains[0])
        else:
            torch._foreach_add_(grads, torch._foreach_mul(params, [self.rho * g for g in gains]))
        torch._foreach_sub_(grads, offsets)

    def attach(self, optimizer: torch.optim.Optimizer) -> HookHandles:
        """Add the penalty gradient in a step pre-hook of ``optimizer``, for the pruned parameters it holds.

        The hook runs inside ``optimizer.step()``, so with ``GradScaler.step(optimizer)`` it sees
        gradients that are already unscaled. Attaching the same optimizer again returns the
        same handles and adds nothing; several optimizers may be attached when each pruned
        parameter is held by one of them. Not together with :meth:`add_penalty_grad`.
        """
        if self._manual:
            raise ConfigError("add_penalty_grad() was called already; use attach() or add_penalty_grad(), not both")

        def install(entry):
            return [optimizer.register_step_pre_hook(lambda opt, args, kwargs: self._add_penalty(entry.current(opt, self.params)))]

        return self._attached.add(optimizer, install, exclusive=self.names)

    def detach(self) -> None:
        """Remove the hooks installed by :meth:`attach` (and allow :meth:`add_penalty_grad` again)."""
        self._attached.remove_all()
        self._manual = False

    # the per-epoch update -------------------------------------------------------------------
    def update(self, loss: "float | Tensor | None" = None) -> dict[str, Any] | None:
        """Record one call; on every ``update_every``-th call update Z and the duals.

        ``loss`` is the mean training loss since the last call (a float or a tensor, detached
        here). A NaN or infinite loss is a :class:`~core.TrainingDiverged` and changes nothing.
        Warns (once) when no penalty gradient was added since the last update, i.e. when
        neither :meth:`attach` nor :meth:`add_penalty_grad` took part in training.
        Returns the history record of the update, or ``None`` when this call did not update.
        """
        if loss is not None:
            value = mean_over_ranks(loss.detach() if isinstance(loss, Tensor) else loss, self.params[0].device)
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"the loss given to update() is {value} (call {self.calls + 1}); lower the learning rate or rho and run again"
                )
        self.calls += 1
        if loss is not None:
            self._pending_losses.append(value)
        if self.calls % self.update_every:
            return None
        self._check_penalized()
        losses, self._pending_losses = self._pending_losses, []
        mean_loss = sum(losses) / len(losses) if losses else None
        self.k += 1
        record = self._update(mean_loss)
        self._refresh_offset()
        self.history.append(record)
        return record

    def _check_penalized(self) -> None:
        if not self._penalized and not self._warned:
            self._warned = True
            warnings.warn(
                f"{type(self).__name__}.update(): no penalty gradient was added since the last update, so training "
                "ignored the pruning constraints; call pruner.attach(optimizer) before training (or "
                "pruner.add_penalty_grad() before every optimizer.step())",
                PruningWarning, stacklevel=3,
            )
        self._penalized = False

    @abstractmethod
    def _update(self, loss: float | None) -> dict[str, Any]:
        """Update Z and the duals; return the history record."""

    def _project(self, layer: PrunedLayer, tensor: Tensor) -> Tensor:
        """``Proj_S(tensor)``: exact cardinality, or the authors' percentile rule (irregular only)."""
        if self.variant == "authors" and layer.scheme.kind == "irregular":
            from .authors import percentile_project

            return percentile_project(tensor, layer.ratio)
        return layer.project(tensor)

    @torch.no_grad()
    def _projected(self, shift: list[Tensor], scale: float = 1.0) -> list[Tensor]:
        """``Proj_S(W + scale * shift)`` for every layer (eq. 10)."""
        return [self._project(layer, p.detach() + scale * d) for layer, p, d in zip(self.layers, self.params, shift)]

    def _layer_record(self, values: list[float]) -> dict[str, float]:
        return dict(zip(self.names, values))

    # hard-pruning and statistics ------------------------------------------------------------
    @torch.no_grad()
    def hard_prune(self) -> Masks:
        """``W <- Proj_S(W)`` for every pruned layer; returns the fixed masks and detaches the pruner.

        Until ``masks.attach(optimizer)``, a step of an optimizer that updates the pruned
        weights is a :class:`ConfigError` (they would grow back).
        """
        if self.variant == "authors":  # the authors' hard_prune: W <- their projection; the mask is W != 0
            masks = {layer.name: self._project(layer, p.detach()) != 0 for layer, p in zip(self.layers, self.params)}
        else:
            masks = {layer.name: layer.mask(p.detach()) for layer, p in zip(self.layers, self.params)}
        for p, name in zip(self.params, self.names):
            p.mul_(masks[name])
        self.detach()
        fixed = Masks(dict(zip(self.names, self.params)), masks)
        fixed.refuse_unmasked_steps()
        return fixed

    @torch.no_grad()
    def violations(self) -> dict[str, float]:
        """``||W_n - Z_n||_F`` per layer (one host sync)."""
        norms = torch.stack([torch.linalg.vector_norm(p.detach() - z).float() for p, z in zip(self.params, self.Z)])
        return self._layer_record(norms.tolist())

    # state ----------------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: Z, duals, counters, history and method state."""
        return {
            "method": self.method,
            "variant": self.variant,
            "amplify": self.amplify,
            "gain": list(self.gain),
            "layers": list(self.names),
            "rho": self.rho,
            "update_every": self.update_every,
            "k": self.k,
            "calls": self.calls,
            "pending_losses": list(self._pending_losses),
            "Z": {n: z.clone() for n, z in zip(self.names, self.Z)},
            "dual": {n: d.clone() for n, d in zip(self.names, self.dual)},
            "history": [dict(r) for r in self.history],
            **self._extra_state(),
        }

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` of a pruner built on the same model and config."""
        if state.get("method") != self.method:
            raise CheckpointError(f"pruner state is for method '{state.get('method')}', this run uses '{self.method}'; resume with the same --method")
        if list(state.get("layers", [])) != self.names:
            raise CheckpointError("pruner state was saved for other pruned layers; resume with the sparsity config and model it was saved with")
        for name, target_list in (("Z", self.Z), ("dual", self.dual)):
            for i, layer_name in enumerate(self.names):
                source = state[name][layer_name]
                if source.shape != target_list[i].shape:
                    raise CheckpointError(f"pruner state '{name}' of '{layer_name}' has shape {tuple(source.shape)}, the model {tuple(target_list[i].shape)}")
                target_list[i].copy_(source)
        if state.get("variant", "paper") != self.variant or bool(state.get("amplify", False)) != self.amplify:
            raise CheckpointError(f"pruner state is for variant '{state.get('variant', 'paper')}' (amplify {state.get('amplify', False)}), "
                                  f"this run uses '{self.variant}' (amplify {self.amplify}); resume with the same method and settings")
        self.gain = [float(g) for g in state.get("gain", [1.0] * len(self.names))]
        self.rho = float(state["rho"])
        self.update_every = int(state["update_every"])
        self.k = int(state["k"])
        self.calls = int(state["calls"])
        self._pending_losses = list(state["pending_losses"])
        self.history = [dict(r) for r in state["history"]]
        self._load_extra_state(state)
        self._refresh_offset()


def squared_norms_and_inner(diffs: list[Tensor], duals: list[Tensor]) -> tuple[list[float], list[float]]:
    """``||D_n||^2`` and ``<Dual_n, D_n>`` per layer, computed on device, fetched in one sync."""
    sq = [d.float().square().sum() for d in diffs]
    inner = [(u.float() * d.float()).sum() for u, d in zip(duals, diffs)]
    values = torch.stack(sq + inner).double().tolist()
    return values[: len(diffs)], values[len(diffs):]
