"""Fixed masks after hard-pruning, and masked retraining that keeps pruned weights at exactly zero."""
from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import Tensor, nn

from .errors import CheckpointError
from .sparsity import normalize_name

__all__ = ["Masks", "HookHandles"]


class HookHandles:
    """Several hook handles removed together."""

    def __init__(self, handles: Iterable) -> None:
        self._handles = list(handles)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


class Masks:
    """Boolean keep-masks for named parameters of a model.

    ``attach(optimizer)`` keeps every pruned weight at exactly zero while the optimizer runs:
    before each step the gradients are masked, after it the weights and every optimizer state
    tensor of the weight's shape (momentum buffers, Adam moments) are masked, so neither
    momentum, weight decay nor Adam's running moments can revive a pruned weight.
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

    # construction ---------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: nn.Module, names: Iterable[str]) -> "Masks":
        """Masks of the non-zero entries of the named parameters (e.g. of a loaded pruned model)."""
        params = _named_params(model)
        names = [normalize_name(n) for n in names]
        return cls(params, {n: params[n].detach() != 0 for n in names})

    @classmethod
    def from_state_dict(cls, model: nn.Module, state: Mapping[str, Tensor]) -> "Masks":
        return cls(_named_params(model), dict(state))

    def state_dict(self) -> dict[str, Tensor]:
        return {n: m.clone() for n, m in zip(self.names, self.masks)}

    # application ----------------------------------------------------------------------------
    @torch.no_grad()
    def apply_(self, module: nn.Module | None = None) -> None:
        """Zero the pruned weights of the masked model, or of ``module`` (an EMA copy, say) by name."""
        if module is None:
            targets = self.params
        else:
            params = _named_params(module)
            targets = [params[n] for n in self.names]
        torch._foreach_mul_([t.data for t in targets], [f.to(t.device, t.dtype) for f, t in zip(self._factors, targets)])

    @torch.no_grad()
    def mask_grads_(self) -> None:
        pairs = [(p.grad, f) for p, f in zip(self.params, self._factors) if p.grad is not None]
        if pairs:
            grads, factors = zip(*pairs)
            torch._foreach_mul_(list(grads), list(factors))

    @torch.no_grad()
    def mask_optimizer_state_(self, optimizer: torch.optim.Optimizer) -> None:
        tensors, factors = [], []
        for param, factor in zip(self.params, self._factors):
            for value in optimizer.state.get(param, {}).values():
                if isinstance(value, Tensor) and value.shape == param.shape:
                    tensors.append(value)
                    factors.append(factor if value.dtype == factor.dtype else factor.to(value.dtype))
        if tensors:
            torch._foreach_mul_(tensors, factors)

    def attach(self, optimizer: torch.optim.Optimizer) -> HookHandles:
        """Mask gradients before and weights plus optimizer state after every ``optimizer.step()``."""

        def before(opt, args, kwargs):
            self.mask_grads_()

        def after(opt, args, kwargs):
            self.apply_()
            self.mask_optimizer_state_(opt)

        self.apply_()
        return HookHandles([optimizer.register_step_pre_hook(before), optimizer.register_step_post_hook(after)])

    # statistics -----------------------------------------------------------------------------
    def kept(self) -> dict[str, int]:
        """Non-zero count each mask allows (one host sync)."""
        counts = torch.stack([m.sum() for m in self.masks]).tolist() if self.masks else []
        return dict(zip(self.names, (int(c) for c in counts)))


def _named_params(module: nn.Module) -> dict[str, nn.Parameter]:
    return {normalize_name(n): p for n, p in module.named_parameters()}
