"""Magnitude pruning peers of SLR and ADMM: one-shot global and gradual (Zhu & Gupta, 2017).

Both select the same parameters as a :class:`~core.SparsityConfig` and end in the same
:class:`~core.Masks`, so the pipeline's masked retraining follows them as it follows SLR/ADMM:

* :class:`GlobalMagnitude` trains plainly through the pruning epochs, then ``hard_prune()``
  calls ``torch.nn.utils.prune.global_unstructured`` over the configured layers with the
  config's total budget (the sum of the per-layer kept counts), so layers may end with other
  ratios than the config's while the pruned layers keep exactly as many weights as SLR's.
* :class:`GradualMagnitude` raises each layer's sparsity along the cubic schedule
  ``s_k = s_f + (s_i - s_f) (1 - k / n)^3`` at every update ``k = 1..n`` (once per epoch in the
  pipeline), pruning by magnitude and keeping pruned weights at zero (gradients, weights and
  optimizer state masked) in between; at ``k = n`` every layer has its configured ratio.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, ConfigError
from .masks import HookHandles, Masks
from .projections import Scheme, sparsity_mask
from .pruner import as_sparsity_config
from .sparsity import PrunedLayer, normalize_name

__all__ = ["MaskPruner", "GlobalMagnitude", "GradualMagnitude", "gradual_sparsity"]


def gradual_sparsity(step: int, steps: int, final: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's cubic schedule: ``final + (initial - final) * (1 - step / steps)^3``.

    ``step`` counts pruning updates from 0 (the dense start) to ``steps`` (the final sparsity);
    steps outside ``[0, steps]`` are clamped.
    """
    if steps < 1:
        raise ConfigError(f"the gradual schedule needs at least one pruning step, got steps = {steps}")
    progress = min(max(step / steps, 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** 3


class MaskPruner:
    """What the magnitude peers share: the pruned layers, counters, history and state."""

    method: str = ""

    def __init__(self, model: nn.Module, config) -> None:
        self.config = as_sparsity_config(config)
        self.layers: list[PrunedLayer] = self.config.resolve(model)
        self.names = [layer.name for layer in self.layers]
        self.params = [layer.param for layer in self.layers]
        self.calls = 0
        self.k = 0
        self.history: list[dict[str, Any]] = []

    def attach(self, optimizer: torch.optim.Optimizer) -> HookHandles:
        """Nothing to add to plain training; subclasses that mask during training override this."""
        return HookHandles([])

    def detach(self) -> None:
        pass

    def update(self, loss: "float | Tensor | None" = None) -> dict[str, Any] | None:
        self.calls += 1
        return None

    @property
    def budget(self) -> int:
        """Non-zero weights the pruned layers keep in total (the sum of the per-layer budgets)."""
        return sum(layer.budget for layer in self.layers)

    def state_dict(self) -> dict[str, Any]:
        return {"method": self.method, "layers": list(self.names), "calls": self.calls, "k": self.k,
                "history": [dict(r) for r in self.history]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("method") != self.method:
            raise CheckpointError(f"pruner state is for method '{state.get('method')}', this run uses '{self.method}'; resume with the same --method")
        if list(state.get("layers", [])) != self.names:
            raise CheckpointError("pruner state was saved for other pruned layers; resume with the sparsity config and model it was saved with")
        self.calls, self.k = int(state["calls"]), int(state["k"])
        self.history = [dict(r) for r in state["history"]]


def _owner_modules(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Normalized parameter name -> (module holding it, attribute name)."""
    owners = {}
    for module_name, module in model.named_modules():
        for attr, _ in module.named_parameters(recurse=False):
            owners[normalize_name(f"{module_name}.{attr}" if module_name else attr)] = (module, attr)
    return owners


class GlobalMagnitude(MaskPruner):
    """One-shot global magnitude pruning with ``torch.nn.utils.prune.global_unstructured``.

    The pruning epochs are plain training (no penalty); :meth:`hard_prune` removes the
    ``total - budget`` smallest-magnitude weights across all configured layers at once.
    Irregular sparsity only.
    """

    method = "magnitude"

    def __init__(self, model: nn.Module, config) -> None:
        config = as_sparsity_config(config)
        if Scheme.parse(config.scheme).kind != "irregular":  # before resolving, whose errors would hide this one
            raise ConfigError(f"global magnitude pruning is irregular only; the config asks for '{config.scheme}' (use scheme: irregular)")
        super().__init__(model, config)
        bad = [layer.name for layer in self.layers if layer.scheme.kind != "irregular"]
        if bad:
            raise ConfigError(f"global magnitude pruning is irregular only; '{bad[0]}' asks for '{self.layers[0].scheme}' (use scheme: irregular)")
        owners = _owner_modules(model)
        self._targets = [owners[name] for name in self.names]

    @torch.no_grad()
    def hard_prune(self) -> Masks:
        from torch.nn.utils import prune

        total = sum(p.numel() for p in self.params)
        prune.global_unstructured(self._targets, pruning_method=prune.L1Unstructured, amount=total - self.budget)
        masks = {}
        for name, (module, attr) in zip(self.names, self._targets):
            masks[name] = getattr(module, f"{attr}_mask").detach().bool()
            prune.remove(module, attr)  # the original Parameter object again, now holding W * mask
        return Masks(dict(zip(self.names, self.params)), masks)


class GradualMagnitude(MaskPruner):
    """Gradual magnitude pruning (Zhu & Gupta, 2017) over ``steps`` updates.

    Args:
        steps: updates over which every layer's sparsity rises from ``initial_sparsity`` to its
            configured ratio (the pipeline passes its pruning epochs / ``update_every``).
        update_every: act on every N-th call of :meth:`update`.
        initial_sparsity: s_i of the schedule (capped at each layer's final ratio).
    """

    method = "gmp"

    def __init__(self, model: nn.Module, config, steps: int, update_every: int = 1, initial_sparsity: float = 0.0) -> None:
        super().__init__(model, config)
        if int(steps) < 1:
            raise ConfigError(f"gradual magnitude pruning needs at least one pruning epoch (steps = {steps})")
        if int(update_every) < 1:
            raise ConfigError(f"update_every = {update_every} must be a positive integer")
        if not 0.0 <= initial_sparsity < 1.0:
            raise ConfigError(f"initial_sparsity = {initial_sparsity} must lie in [0, 1)")
        nm = [layer.name for layer in self.layers if layer.scheme.kind == "nm"]
        if nm:
            raise ConfigError(f"'{nm[0]}' uses an N:M scheme, whose sparsity is fixed; gradual pruning needs a ratio (irregular, filter, channel or column)")
        self.steps, self.update_every, self.initial_sparsity = int(steps), int(update_every), float(initial_sparsity)
        self.masks: Masks | None = None
        self._optimizers: list[torch.optim.Optimizer] = []
        self._handles: list[HookHandles] = []

    def ratios(self, k: int) -> list[float]:
        """Per-layer sparsity after update ``k`` (0 = dense start, ``steps`` = the configured ratios)."""
        return [gradual_sparsity(k, self.steps, layer.ratio, min(self.initial_sparsity, layer.ratio)) for layer in self.layers]

    # masking during the pruning epochs ----------------------------------------------------
    def attach(self, optimizer: torch.optim.Optimizer) -> HookHandles:
        """Keep the current masks in force at every step of ``optimizer``."""
        self._optimizers.append(optimizer)
        if self.masks is not None:
            self._handles.append(self.masks.attach(optimizer))
        return HookHandles([_Detach(self, optimizer)])

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._optimizers.clear()

    def _set_masks(self, masks: dict[str, Tensor]) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.masks = Masks(dict(zip(self.names, self.params)), masks)
        self.masks.apply_()
        for optimizer in self._optimizers:
            self.masks.mask_optimizer_state_(optimizer)
            self._handles.append(self.masks.attach(optimizer))

    @torch.no_grad()
    def update(self, loss: "float | Tensor | None" = None) -> dict[str, Any] | None:
        """On every ``update_every``-th call: prune each layer by magnitude to its scheduled sparsity."""
        self.calls += 1
        if self.calls % self.update_every:
            return None
        self.k += 1
        ratios = self.ratios(self.k)
        self._set_masks({layer.name: sparsity_mask(p.detach(), layer.scheme, r) for layer, p, r in zip(self.layers, self.params, ratios)})
        kept = sum(self.masks.kept().values())
        total = sum(p.numel() for p in self.params)
        record = {"k": self.k, "loss": None if loss is None else float(loss), "sparsity": 1.0 - kept / total,
                  "sparsity_per_layer": dict(zip(self.names, ratios))}
        self.history.append(record)
        return record

    @torch.no_grad()
    def hard_prune(self) -> Masks:
        """Prune every layer to its configured ratio by magnitude; returns the fixed masks and detaches."""
        masks = {layer.name: layer.mask(p.detach()) for layer, p in zip(self.layers, self.params)}
        self.detach()
        final = Masks(dict(zip(self.names, self.params)), masks)
        final.apply_()
        return final

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(steps=self.steps, update_every=self.update_every, initial_sparsity=self.initial_sparsity,
                     masks=None if self.masks is None else self.masks.state_dict())
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.steps, self.update_every = int(state["steps"]), int(state["update_every"])
        self.initial_sparsity = float(state["initial_sparsity"])
        if state.get("masks") is not None:
            self._set_masks(dict(state["masks"]))


class _Detach:
    """Handle that removes one optimizer from a :class:`GradualMagnitude`."""

    def __init__(self, pruner: GradualMagnitude, optimizer: torch.optim.Optimizer) -> None:
        self.pruner, self.optimizer = pruner, optimizer

    def remove(self) -> None:
        pruner = self.pruner
        if self.optimizer in pruner._optimizers:
            others = [o for o in pruner._optimizers if o is not self.optimizer]
            pruner.detach()
            for optimizer in others:
                pruner.attach(optimizer)

