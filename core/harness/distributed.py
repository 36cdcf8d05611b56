"""Multi-process training helpers every entry point shares: joining the process group that
``torchrun`` describes, rank checks, barriers, reductions, the DDP wrapper, and batch norm over
the global batch on any backend (``gloo`` on CPU included).

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment, or 1) every helper is a cheap no-op:
``rank() == 0``, ``world_size() == 1``, ``is_main()`` is true, reductions return their input.

    device = init_from_env("cpu")            # torchrun --nproc_per_node=2 ...: gloo; on GPUs nccl
    model = convert_sync_batchnorm(model, device)   # global-batch statistics, as one process would see
    ddp = wrap_ddp(model, device)            # the training forward; evaluate and save `model` itself
    if is_main(): save(...)                  # only rank 0 writes files
    barrier()
"""
from __future__ import annotations

import atexit
import os
from datetime import timedelta
from typing import Any, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Sampler

from ..errors import ConfigError
from ..pruning.ranks import all_reduce_sum, is_distributed, is_main, mean_over_ranks, rank, world_size

__all__ = ["init_from_env", "destroy", "is_distributed", "rank", "local_rank", "world_size", "is_main", "barrier",
           "all_reduce_sum", "mean_over_ranks", "broadcast_object", "all_gather_object", "wrap_ddp",
           "GlobalBatchNorm", "convert_sync_batchnorm", "ShardedEpochSampler", "shard_indices"]

T = TypeVar("T")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer; launch with torchrun or unset it") from None


def init_from_env(device: "str | torch.device | None" = None, backend: str | None = None,
                  timeout_s: float = 1800.0) -> torch.device:
    """Join the process group ``torchrun`` describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``) and return this process's device.

    ``device`` is what the user asked for (``None``: CUDA when available, else the CPU). Under
    torchrun a CUDA device becomes ``cuda:LOCAL_RANK``. The backend is ``nccl`` for CUDA and
    ``gloo`` for the CPU unless ``backend`` names one. Without torchrun nothing is initialized.
    Calling it again in an initialized process only returns the device; the group is left at exit.
    """
    asked = torch.device(device) if device not in (None, "") else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1 and not is_distributed():
        return asked
    local = _env_int("LOCAL_RANK", 0)
    if asked.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but no GPU is visible; use --device cpu (gloo) or run on GPUs")
        if local >= torch.cuda.device_count():
            raise ConfigError(f"local rank {local} has no GPU ({torch.cuda.device_count()} visible); "
                              "use --nproc_per_node at most the number of GPUs, or --device cpu")
        asked = torch.device("cuda", local)
        torch.cuda.set_device(asked)
    if not is_distributed():
        if not dist.is_available():
            raise ConfigError("this PyTorch build has no torch.distributed; run without torchrun")
        dist.init_process_group(backend or ("nccl" if asked.type == "cuda" else "gloo"), timeout=timedelta(seconds=timeout_s))
        atexit.register(destroy)
    return asked


def destroy() -> None:
    """Leave the process group (no-op when there is none)."""
    if is_distributed():
        dist.destroy_process_group()


def local_rank() -> int:
    return _env_int("LOCAL_RANK", 0) if is_distributed() else 0


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if world_size() > 1:
        dist.barrier()


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (any picklable object)."""
    if world_size() == 1:
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src)
    return box[0]  # type: ignore[return-value]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def wrap_ddp(model: nn.Module, device: "torch.device | None" = None, **kwargs: Any) -> nn.Module:
    """``DistributedDataParallel(model)`` for training under torchrun; ``model`` itself in one process.

    Parameters stay the model's own tensors, so optimizers, pruners and masks built on ``model``
    see the averaged gradients.
    """
    if world_size() == 1:
        return model
    device = device or next(model.parameters()).device
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, **kwargs)


# --- batch norm over the global batch ---------------------------------------------------------
class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm that normalizes with the statistics of the whole global batch (every rank's
    part) in training, on any backend: the sums travel in differentiable all-reduces, so the
    gradients are those of one process holding the whole batch. Evaluation, and training in one
    process, are plain batch norm. :class:`torch.nn.SyncBatchNorm` does the same on GPUs only.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(input)
        x = input.float()
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        local_count = x.numel() // x.size(1)
        sums = _summed(torch.cat([x.sum(dims), x.new_full((1,), float(local_count))]))
        count = sums[-1]
        mean = sums[:-1] / count
        centered = x - mean.view(shape)
        var = _summed(centered.square().sum(dims)) / count  # two passes, as precise as one process
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr,operator]
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                n = float(count)
                self.running_mean.mul_(1 - factor).add_(mean.detach().to(self.running_mean.dtype), alpha=factor)
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(input.dtype)


def _summed(tensor: Tensor) -> Tensor:
    """Sum over ranks, differentiable: the gradient of each rank's input is the sum of the ranks'
    output gradients."""
    from torch.distributed._functional_collectives import all_reduce, wait_tensor

    return wait_tensor(all_reduce(tensor, "sum", dist.group.WORLD))


def convert_sync_batchnorm(module: nn.Module, device: "torch.device | None" = None) -> nn.Module:
    """Batch norm over the global batch in every ``BatchNorm*d`` of ``module`` when several ranks
    train: :class:`torch.nn.SyncBatchNorm` on CUDA, :class:`GlobalBatchNorm` elsewhere. The
    parameters and buffers are the same tensors, so state-dict keys do not change. In one
    process ``module`` is returned unchanged."""
    if world_size() == 1:
        return module
    device = device or next(module.parameters()).device
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global_bn(module)


def _to_global_bn(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, (GlobalBatchNorm, nn.SyncBatchNorm)):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, _to_global_bn(child))
    return out


# --- data -------------------------------------------------------------------------------------
class ShardedEpochSampler(Sampler):
    """This rank's share of one shuffled pass, as ``(seed, index)`` pairs.

    Each epoch :meth:`set_seed` gives the seed of a permutation of the data set, padded (by
    repeating its start) to a multiple of the world size, and split as
    :class:`~torch.utils.data.DistributedSampler` splits it: rank ``r`` takes entries
    ``r, r + W, ...``. With a per-rank batch of ``B / W`` the ranks' ``j``-th batches together are
    entries ``jB .. (j+1)B - 1`` of the permutation, the ``j``-th batch of one process with batch
    ``B``. The seed travels with each index, so a data set can draw its random augmentation from
    ``(seed, index)`` alone: the same image gets the same crop on any rank, in any order.
    """

    def __init__(self, length: int, rank: int = 0, world: int = 1) -> None:
        if length < 1:
            raise ConfigError("the training set is empty; check the data settings")
        self.length, self.rank, self.world = length, rank, world
        self.seed = 0

    def set_seed(self, seed: int) -> None:
        self.seed = int(seed)

    def __len__(self) -> int:
        return -(-self.length // self.world)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.length, generator=torch.Generator().manual_seed(self.seed)).tolist()
        total = len(self) * self.world
        order += order[: total - self.length]
        return iter([(self.seed, i) for i in order[self.rank:total:self.world]])


def shard_indices(length: int) -> list[int]:
    """This rank's indices ``rank, rank + W, ...`` of ``range(length)``: disjoint shards that
    cover it once (for evaluation, with sums reduced over ranks afterwards)."""
    return list(range(rank(), length, world_size()))
