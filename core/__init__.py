"""SLR and ADMM weight pruning for any PyTorch model and training loop.

>>> from core import SparsityConfig, SLR
>>> pruner = SLR(model, SparsityConfig.from_yaml("ratios.yaml"), rho=0.1, s0=1e-4, M=200, r=0.1)
>>> pruner.attach(optimizer)            # adds Lambda + rho (W - Z) to W.grad at every step
>>> pruner.update(epoch_mean_loss)      # once per epoch: Z, surrogate condition, multipliers
>>> masks = pruner.hard_prune(); masks.attach(optimizer)   # masked retraining

Install it alone with ``pip install .`` (torch and PyYAML only). ``help(core.SLR)`` lists the
accepted forms of the model and the config. Use ``attach`` or ``add_penalty_grad``, not both.
"""
from .pruning.admm import ADMM
from .errors import CheckpointError, ConfigError, DataError, PruningWarning, TrainingDiverged, UserError, exit_on_user_error
from .pruning.masks import Masks
from .pruning.methods import MethodSpec, build_pruner, method_names, register_method, unavailable_reason
from .pruning.names import ParameterNames, normalize_name
from .pruning.projections import Scheme, project, scheme_units, sparsity_mask, topk_mask
from .pruning.pruner import DualPruner
from .pruning.slr import SLR, slr_alpha, slr_stepsize
from .pruning.sparsity import PrunedLayer, SparsityConfig
from .pruning.stats import CompressionStats, compression_stats

__all__ = [
    "ADMM", "SLR", "DualPruner", "SparsityConfig", "PrunedLayer", "Masks", "Scheme",
    "project", "sparsity_mask", "topk_mask", "scheme_units", "slr_alpha", "slr_stepsize",
    "normalize_name", "ParameterNames",
    "CompressionStats", "compression_stats",
    "UserError", "ConfigError", "DataError", "CheckpointError", "TrainingDiverged", "PruningWarning", "exit_on_user_error",
    "build_pruner", "method_names", "register_method", "unavailable_reason", "MethodSpec",
]
