"""The process group as the pruners see it: rank queries and the reductions that keep every
rank's pruner state equal under DistributedDataParallel. Without ``torchrun`` each is a cheap
no-op (``rank() == 0``, ``world_size() == 1``, reductions return their input)."""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["is_distributed", "rank", "world_size", "is_main", "all_reduce_sum", "mean_over_ranks"]


def is_distributed() -> bool:
    """Whether a process group is initialized (with any number of processes)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0, the process that writes results, checkpoints, logs and progress bars."""
    return rank() == 0


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over ranks in place and return it (unchanged in one process)."""
    if world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


def mean_over_ranks(value: "float | Tensor", device: "torch.device | None" = None) -> float:
    """``value`` as a float, averaged over ranks when there are several (one collective)."""
    if world_size() > 1:
        total = torch.as_tensor(value, dtype=torch.float64, device=device).detach().clone()
        dist.all_reduce(total)
        return float(total) / world_size()
    return float(value)
