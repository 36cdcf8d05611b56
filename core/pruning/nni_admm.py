"""NNI 2.10.1's ``ADMMPruner`` as a peer of SLR and ADMM (an optional extra: requirements-peers.txt).

NNI owns its loop: ``ADMMPruner.compress()`` runs ``iterations`` rounds of ``training_epochs``
epochs of training, each round followed by its Z and U updates, and ends with magnitude masks.
Here ``iterations`` = the recipe's pruning epochs and ``training_epochs`` = 1, so NNI updates Z
and U once per epoch as this project's ADMM does. Each epoch is the task's own
``train_one_epoch`` (the pipeline's epoch function: training, evaluation, history), run with
the optimizer NNI rebuilds on its wrapped model from a traced copy of the task's optimizer.

NNI adds its penalty by patching the evaluator's criterion: ``loss + rho/2 * sqrt(||W - Z + U||_F)``
per layer (NNI's form as shipped; Zhang et al.'s augmented Lagrangian has ``rho/2 ||W - Z + U||_F^2``).
The task's loop calls its own loss function, so the criterion given to NNI is the identity and a
step pre-hook backpropagates NNI's patched criterion at a zero loss: that adds exactly the
penalty's gradient, as the penalty depends on the weights only.

**PyTorch-2 shim** (method ``nni_admm``; ``nni_admm_raw`` runs NNI unchanged). NNI starts from
Z = W and U = 0, where the penalty's gradient is d sqrt(n)/dn = inf at n = 0 times the norm's
subgradient 0. PyTorch's old norm backward computed ``grad / norm`` and masked it to 0 at a zero
norm, so the product was 0; current PyTorch computes ``grad * (x / norm).masked_fill_(norm == 0, 0)``,
inf * 0 = NaN, and every weight NNI prunes becomes NaN in the first optimizer step. The shim
overrides ``ADMMPruner.loss_patch`` with the same penalty whose gradient is 0 where the norm is 0
(the old behaviour) and is NNI's everywhere else.

Also as shipped: NNI masks biases of filters whose weights are all pruned (only weight masks are
kept for the masked retraining), and it keeps ``numel - int(sparsity * numel)`` weights per
layer, so the sparsity handed to it is chosen to give exactly this project's per-layer budget.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from .masks import HookHandles, Masks
from .pruner import as_sparsity_config
from .sparsity import PrunedLayer, normalize_name

__all__ = ["NNIADMM", "nni_config_list", "zero_grad_sqrt", "nni_pruner_class"]

NNI_VERSION = "2.10.1"


def zero_grad_sqrt(n: torch.Tensor) -> torch.Tensor:
    """``sqrt(n)`` for ``n >= 0`` with gradient 0 (not inf) at ``n = 0``."""
    positive = n > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, n, torch.ones_like(n))), torch.zeros_like(n))


def nni_pruner_class(patched: bool = True):
    """NNI's ``ADMMPruner``, or its subclass with the PyTorch-2 gradient shim."""
    from nni.compression.pytorch.pruning import ADMMPruner

    if not patched:
        return ADMMPruner

    class ADMMPrunerTorch2(ADMMPruner):
        """NNI's ADMMPruner; ``loss_patch`` is NNI 2.10.1's with :func:`zero_grad_sqrt` for ``torch.sqrt``."""

        def loss_patch(self, origin_loss):
            penalty = 0
            for name, wrapper in self.get_modules_wrapper().items():
                rho = wrapper.config.get("rho", 1e-4)
                self.Z[name]["weight"] = self.Z[name]["weight"].to(wrapper.weight.device)
                self.U[name]["weight"] = self.U[name]["weight"].to(wrapper.weight.device)
                penalty += (rho / 2) * zero_grad_sqrt(torch.norm(wrapper.weight - self.Z[name]["weight"] + self.U[name]["weight"]))
            return origin_loss + penalty

    return ADMMPrunerTorch2


def nni_config_list(layers: list[PrunedLayer], model: nn.Module, rho: float) -> list[dict[str, Any]]:
    """NNI's ``config_list``: one entry per pruned layer, its module name, the sparsity that makes
    NNI keep exactly :attr:`PrunedLayer.budget` weights, and ``rho``."""
    modules = {normalize_name(name): (name, module) for name, module in model.named_modules()}
    entries = []
    for layer in layers:
        module_name, _, attr = layer.name.rpartition(".")
        if attr != "weight" or not isinstance(modules.get(module_name, (None, None))[1], (nn.Conv2d, nn.Linear)):
            raise ConfigError(f"NNI's ADMMPruner prunes Conv2d/Linear weights only; '{layer.name}' is not one (exclude it from the sparsity config)")
        if layer.scheme.kind != "irregular":
            raise ConfigError(f"the NNI peer runs fine-grained (irregular) ADMM only; '{layer.name}' asks for '{layer.scheme}'")
        numel = layer.param.numel()
        pruned = numel - layer.budget
        entries.append({"sparsity_per_layer": (pruned + 0.5) / numel, "op_names": [modules[module_name][0]], "rho": float(rho)})
    return entries


class NNIADMM:
    """NNI 2.10.1's ADMMPruner driven by the pipeline's epochs (registered with ``owns_loop=True``).

    Args:
        rho: NNI's per-layer ``rho`` (the same value SLR and ADMM get).
        epochs: NNI ``iterations`` (one training epoch each).
        patched: apply the PyTorch-2 gradient shim (see the module docstring).
    """


    def __init__(self, model: nn.Module, config, rho: float = 0.1, epochs: int = 1, patched: bool = True) -> None:
        if int(epochs) < 1:
            raise ConfigError(f"NNI's ADMMPruner needs at least one pruning epoch (epochs = {epochs})")
        if not rho > 0:
            raise ConfigError(f"rho = {rho} must be positive, e.g. 0.1")
        self.method = "nni_admm" if patched else "nni_admm_raw"
        self.model = model
        self.config = as_sparsity_config(config)
        self.layers = self.config.resolve(model)
        self.names = [layer.name for layer in self.layers]
        self.rho, self.epochs, self.patched = float(rho), int(epochs), bool(patched)
        self.config_list = nni_config_list(self.layers, model, self.rho)
        self.history: list[dict[str, Any]] = []
        self._optimizer: torch.optim.Optimizer | None = None
        self._pruner = None
        self._masks: dict[str, dict[str, torch.Tensor]] | None = None

    def attach(self, optimizer: torch.optim.Optimizer) -> HookHandles:
        """Remember the task's optimizer; NNI rebuilds it (class and settings) on its wrapped model."""
        if len(optimizer.param_groups) != 1:
            raise ConfigError("the NNI peer rebuilds the task's optimizer from one parameter group; give it a single group")
        self._optimizer = optimizer
        return HookHandles([])

    def detach(self) -> None:
        pass

    def update(self, loss=None) -> None:
        """NNI updates Z and U itself between its iterations."""
        return None

    def run_prune_stage(self, train_epoch: Callable[[torch.optim.Optimizer, int], float], epochs: int) -> None:
        """Run ``ADMMPruner.compress()`` with ``train_epoch(optimizer, epoch)`` as each training epoch."""
        import nni
        from nni.compression.pytorch import TorchEvaluator

        if self._optimizer is None:
            raise ConfigError("attach(optimizer) the task's optimizer before the NNI pruning stage")
        if int(epochs) != self.epochs:
            raise ConfigError(f"the NNI peer was built for {self.epochs} epochs, the stage asks for {epochs}")
        traced = nni.trace(type(self._optimizer))(self.model.parameters(), **self._optimizer.defaults)
        device = next(self.model.parameters()).device
        epoch = 0

        def training_func(model, optimizers, criterion, lr_schedulers=None, max_steps=None, max_epochs=None):
            nonlocal epoch
            add_penalty = lambda opt, args, kwargs: criterion(torch.zeros((), device=device)).backward()  # noqa: E731
            handle = optimizers.register_step_pre_hook(add_penalty)
            try:
                for _ in range(max_epochs or 1):
                    train_epoch(optimizers, epoch)
                    epoch += 1
            finally:
                handle.remove()

        evaluator = TorchEvaluator(training_func, traced, criterion=lambda loss: loss)
        logger = logging.getLogger("nni")
        level = logger.level
        logger.setLevel(logging.ERROR)  # NNI logs a line per iteration and a harmless "did not bind any model" warning
        try:
            self._pruner = nni_pruner_class(self.patched)(self.model, self.config_list, evaluator=evaluator,
                                                          iterations=self.epochs, training_epochs=1)
            _, self._masks = self._pruner.compress()
        finally:
            logger.setLevel(level)

    @torch.no_grad()
    def hard_prune(self) -> Masks:
        """Unwrap NNI's modules (weights become W * mask) and return NNI's weight masks."""
        if self._pruner is None or self._masks is None:
            raise ConfigError("the NNI pruning stage has not run; hard_prune() comes after run_prune_stage()")
        self._pruner._unwrap_model()
        params = {normalize_name(n): p for n, p in self.model.named_parameters()}
        masks = {name: self._masks[entry["op_names"][0]]["weight"].bool() for name, entry in zip(self.names, self.config_list)}
        result = Masks({n: params[n] for n in self.names}, masks)
        result.apply_()
        return result

    def state_dict(self) -> dict[str, Any]:
        return {"method": self.method, "layers": list(self.names), "history": list(self.history)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("method") != self.method or list(state.get("layers", [])) != self.names:
            raise CheckpointError(f"pruner state is not of an {self.method} run with these layers; resume with the same --method and config")
