"""Optimizer hooks of the pruners and the masks: each optimizer attached once, with the parameters it holds."""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["HookHandles", "Attachment", "AttachedOptimizers", "held_indices"]


class HookHandles:
    """Several hook handles removed together (``remove()`` is safe to call twice)."""

    def __init__(self, handles: Iterable, on_remove: Callable[[], None] | None = None) -> None:
        self._handles = list(handles)
        self._on_remove = on_remove

    def remove(self) -> None:
        """Remove every hook; the object they were attached for forgets the optimizer."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._on_remove is not None:
            self._on_remove()
            self._on_remove = None


def held_indices(optimizer: torch.optim.Optimizer, params: Sequence[Tensor]) -> list[int]:
    """Positions in ``params`` of the parameters that ``optimizer`` holds."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return [i for i, p in enumerate(params) if id(p) in held]


@dataclass
class Attachment:
    """One attached optimizer: the positions of the parameters it holds, and its hooks."""

    indices: list[int]
    groups: int
    handles: HookHandles = field(default_factory=lambda: HookHandles([]))

    def current(self, optimizer: torch.optim.Optimizer, params: Sequence[Tensor]) -> list[int]:
        """``indices``, recomputed when parameter groups were added since the last call."""
        if len(optimizer.param_groups) != self.groups:
            self.indices, self.groups = held_indices(optimizer, params), len(optimizer.param_groups)
        return self.indices


class AttachedOptimizers:
    """The optimizers that one pruner (or one set of masks) is attached to, once each.

    ``what`` names the parameters in errors ("pruned parameters", "masked parameters").
    """

    def __init__(self, params: Sequence[Tensor], what: str) -> None:
        self.params = params
        self.what = what
        self._entries: "weakref.WeakKeyDictionary[torch.optim.Optimizer, Attachment]" = weakref.WeakKeyDictionary()

    def __contains__(self, optimizer: Any) -> bool:
        return optimizer in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, optimizer: torch.optim.Optimizer) -> Attachment | None:
        """The attachment of ``optimizer``, or ``None``."""
        return self._entries.get(optimizer)

    def add(self, optimizer: torch.optim.Optimizer, install: Callable[[Attachment], list[Any]],
            exclusive: Sequence[str] | None = None) -> HookHandles:
        """Attach ``optimizer`` once: ``install(attachment)`` registers its hooks.

        With ``exclusive`` (the parameters' names), a parameter already held by another
        attached optimizer is a :class:`ConfigError`.
        """
        if not hasattr(optimizer, "register_step_pre_hook") or not hasattr(optimizer, "param_groups"):
            raise ConfigError(f"attach() takes a torch.optim.Optimizer, got {type(optimizer).__name__}")
        existing = self._entries.get(optimizer)
        if existing is not None:
            return existing.handles
        indices = held_indices(optimizer, self.params)
        if not indices:
            raise ConfigError(f"the optimizer holds none of the {self.what}; build it from model.parameters() before attach()")
        if exclusive is not None:
            taken = {i for entry in self._entries.values() for i in entry.indices}
            shared = [i for i in indices if i in taken]
            if shared:
                raise ConfigError(
                    f"'{exclusive[shared[0]]}' is already held by an attached optimizer, so its penalty would be added "
                    "twice; give each pruned parameter to one attached optimizer"
                )
        entry = Attachment(indices, len(optimizer.param_groups))
        ref = weakref.ref(optimizer)
        entry.handles = HookHandles(install(entry), on_remove=lambda: self._forget(ref))
        self._entries[optimizer] = entry
        return entry.handles

    def _forget(self, ref: "weakref.ref[torch.optim.Optimizer]") -> None:
        optimizer = ref()
        if optimizer is not None:
            self._entries.pop(optimizer, None)

    def remove_all(self) -> None:
        """Remove the hooks of every attached optimizer."""
        for entry in list(self._entries.values()):
            entry.handles.remove()
        self._entries.clear()

    def covered(self) -> set[int]:
        """Positions of the parameters held by some attached optimizer."""
        return {i for entry in self._entries.values() for i in entry.indices}
