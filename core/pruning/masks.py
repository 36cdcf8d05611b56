"""Fixed masks after hard-pruning, and masked retraining that keeps pruned weights at exactly zero."""
from __future__ import annotations

import weakref
from typing import Iterable, Mapping

import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from ..errors import CheckpointError, ConfigError
from .hooks import AttachedOptimizers, HookHandles
from .names import ParameterNames

__all__ = ["Masks", "HookHandles"]

# Optimizers whose update of an entry with zero weight, zero gradient and zero state is exactly
# zero and leaves that state zero (weight decay, momentum and Adam moments included): for these,
# masking the gradients before each step keeps pruned weights and state at zero by itself.
_GRADS_SUFFICE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.NAdam, torch.optim.RAdam,
                  torch.optim.RMSprop, torch.optim.Adadelta)

# optimizer -> ids of the parameters that some attached Masks keeps masked in it
_MASKED_IN: "weakref.WeakKeyDictionary[torch.optim.Optimizer, set[int]]" = weakref.WeakKeyDictionary()


class Masks:
    """Boolean keep-masks for named parameters of a model.

    ``attach(optimizer)`` keeps every pruned weight at exactly zero while the optimizer runs:
    the weights and every optimizer state tensor of the weight's shape (momentum buffers, Adam
    moments) are masked once, and before each step the gradients are. SGD, Adam, AdamW, NAdam,
    RAdam, RMSprop and Adadelta then keep pruned weights and their state at exactly zero
    (weight decay and momentum included); after each step of any other optimizer the weights
    and state are masked again. Attach every optimizer that updates masked parameters;
    attaching one twice does nothing.

    Masks returned by a pruner's ``hard_prune()`` refuse (with a :class:`ConfigError`) an
    ``optimizer.step()`` of any optimizer that updates masked parameters before
    ``masks.attach(optimizer)``: the pruned weights would grow back. ``detach()`` lifts that
    and removes the hooks, for dense training from here on.
    """

    def __init__(self, params: Mapping[str, nn.Parameter], masks: Mapping[str, Tensor]) -> None:
        missing = sorted(set(masks) - set(params))
        if missing:
            raise CheckpointError(f"masks name parameters the model does not have: {missing[:3]}; load masks saved for this model")
        self.names = list(masks)
        self.params = [params[n] for n in self.names]
        for name, param in zip(self.names, self.params):
            if masks[name].shape != param.shape:
                raise CheckpointError(
                    f"mask for '{name}' has shape {tuple(masks[name].shape)}, the parameter {tuple(param.shape)}; "
                    "load masks saved for this model"
                )
        self.masks = [masks[n].to(device=p.device, dtype=torch.bool) for n, p in zip(self.names, self.params)]
        self._factors = [m.to(p.dtype) for m, p in zip(self.masks, self.params)]
        self._attached = AttachedOptimizers(self.params, "masked parameters")
        self._guard = None

    # construction ---------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: nn.Module, names: Iterable[str]) -> "Masks":
        """Masks of the non-zero entries of the named parameters (e.g. of a loaded pruned model).

        Names may carry wrapper components or be aliases of tied parameters; a name the model
        lacks is a :class:`ConfigError`.
        """
        index = ParameterNames(model)
        canonical = list(dict.fromkeys(index.lookup(n) for n in names))
        return cls(index.params, {n: index.params[n].detach() != 0 for n in canonical})

    @classmethod
    def from_state_dict(cls, model: nn.Module, state: Mapping[str, Tensor]) -> "Masks":
        """Masks saved by :meth:`state_dict`, for the same model (names resolved as in :meth:`from_model`)."""
        index = ParameterNames(model)
        unknown = sorted(n for n in state if _canonical(index, n) is None)
        if unknown:
            raise CheckpointError(f"masks name parameters the model does not have: {unknown[:3]}; load masks saved for this model")
        return cls(index.params, {_canonical(index, n): m for n, m in state.items()})

    def state_dict(self) -> dict[str, Tensor]:
        """``name -> bool mask`` (copies), for :meth:`from_state_dict`."""
        return {n: m.clone() for n, m in zip(self.names, self.masks)}

    # application ----------------------------------------------------------------------------
    @torch.no_grad()
    def apply_(self, module: nn.Module | None = None) -> None:
        """Zero the pruned weights of the masked model, or of ``module`` (an EMA copy, say) by name."""
        if module is None:
            targets = self.params
        else:
            index = ParameterNames(module)
            targets = [index.params[index.lookup(n)] for n in self.names]
        torch._foreach_mul_([t.data for t in targets], [f.to(t.device, t.dtype) for f, t in zip(self._factors, targets)])

    @torch.no_grad()
    def mask_grads_(self) -> None:
        """Zero the gradients of the pruned weights (call it before clipping, say)."""
        pairs = [(p.grad, f) for p, f in zip(self.params, self._factors) if p.grad is not None]
        if pairs:
            grads, factors = zip(*pairs)
            torch._foreach_mul_(list(grads), list(factors))

    @torch.no_grad()
    def mask_optimizer_state_(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero the pruned entries of every state tensor of ``optimizer`` shaped like its weight."""
        tensors, factors = [], []
        for param, factor in zip(self.params, self._factors):
            for value in optimizer.state.get(param, {}).values():
                if isinstance(value, Tensor) and value.shape == param.shape:
                    tensors.append(value)
                    factors.append(factor if value.dtype == factor.dtype else factor.to(value.dtype))
        if tensors:
            torch._foreach_mul_(tensors, factors)

    def attach(self, optimizer: torch.optim.Optimizer) -> HookHandles:
        """Mask gradients before every ``optimizer.step()`` (and weights plus state after it, where needed).

        ``optimizer`` must hold some masked parameter (else :class:`ConfigError`); attaching it
        again returns the same handles and adds nothing.
        """

        def before(opt, args, kwargs):
            self.mask_grads_()

        def after(opt, args, kwargs):
            self.apply_()
            self.mask_optimizer_state_(opt)

        def install(entry):
            _MASKED_IN.setdefault(optimizer, set()).update(id(self.params[i]) for i in entry.indices)
            hooks = [optimizer.register_step_pre_hook(before)]
            if type(optimizer) not in _GRADS_SUFFICE:
                hooks.append(optimizer.register_step_post_hook(after))
            return hooks

        handles = self._attached.add(optimizer, install)
        self.apply_()
        self.mask_optimizer_state_(optimizer)
        return handles

    def detach(self) -> None:
        """Remove the hooks of every attached optimizer and stop refusing unmasked steps."""
        self._attached.remove_all()
        if self._guard is not None:
            self._guard.remove()
            self._guard = None

    def refuse_unmasked_steps(self) -> None:
        """From now on, an ``optimizer.step()`` that updates masked parameters is a :class:`ConfigError`
        until ``attach(optimizer)``. Pruners call this on the masks that ``hard_prune()`` returns."""
        if self._guard is not None:
            return
        ref = weakref.ref(self)
        ids = frozenset(id(p) for p in self.params)
        unrelated: "weakref.WeakSet[torch.optim.Optimizer]" = weakref.WeakSet()

        def guard(optimizer, args, kwargs):
            masks = ref()
            if masks is None or optimizer in masks._attached or optimizer in unrelated:
                return
            held = {id(p) for group in optimizer.param_groups for p in group["params"]} & ids
            if not held:
                unrelated.add(optimizer)
            elif not held <= _MASKED_IN.get(optimizer, set()):
                raise ConfigError(
                    f"{type(optimizer).__name__}.step() would update hard-pruned weights that no masks keep at zero, so they "
                    "would grow back; call masks.attach(optimizer) before training (or masks.detach() to train densely)"
                )

        self._guard = register_optimizer_step_pre_hook(guard)
        weakref.finalize(self, self._guard.remove)

    # statistics -----------------------------------------------------------------------------
    def kept(self) -> dict[str, int]:
        """Non-zero count each mask allows (one host sync)."""
        counts = torch.stack([m.sum() for m in self.masks]).tolist() if self.masks else []
        return dict(zip(self.names, (int(c) for c in counts)))


def _canonical(index: ParameterNames, name: str) -> str | None:
    try:
        return index.lookup(name)
    except ConfigError:
        return None
