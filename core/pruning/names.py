"""Parameter names as users write them: wrapper components removed, tied aliases resolved.

Wrappers add a component to every name below them: DataParallel and DDP ``module.``,
``torch.compile`` ``_orig_mod.``, activation checkpointing ``_checkpoint_wrapped_module.``,
FSDP ``_fsdp_wrapped_module.``. A compiled or wrapped *submodule* puts it in the middle of the
name (``layer4._orig_mod.0.conv1.weight``). These components are removed wherever they occur,
on the model's side and on the user's.

A tied parameter (``decoder.weight = embed.weight``) has one canonical name, the first that
``model.named_parameters()`` gives, and its other names are aliases that resolve to it.
"""
from __future__ import annotations

import difflib
import fnmatch
from typing import Iterable

from torch import nn

from ..errors import ConfigError

__all__ = ["WRAPPER_COMPONENTS", "normalize_name", "ParameterNames"]

WRAPPER_COMPONENTS = frozenset({"module", "_orig_mod", "_checkpoint_wrapped_module", "_fsdp_wrapped_module"})


def normalize_name(name: str) -> str:
    """``name`` without the components that model wrappers add, wherever they occur."""
    return ".".join(part for part in name.split(".") if part not in WRAPPER_COMPONENTS)


class ParameterNames:
    """The parameters of a model by normalized name, with the aliases of tied parameters.

    ``params`` maps canonical names to parameters in the model's order; ``lookup`` and
    ``match`` accept canonical names, aliases, raw (wrapped) names and glob patterns.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model_name = type(model).__name__
        self.params: dict[str, nn.Parameter] = {}
        self.aliases: dict[str, str] = {}  # every known name -> canonical name
        canonical_of: dict[int, str] = {}
        raw_of: dict[str, str] = {}
        for raw, param in model.named_parameters(remove_duplicate=False):
            name = normalize_name(raw)
            known = self.aliases.get(name)
            if known is not None and self.params[known] is not param:
                raise ConfigError(
                    f"parameters '{raw_of[name]}' and '{raw}' of {self.model_name} have the same name '{name}' "
                    f"once the wrapper components {sorted(WRAPPER_COMPONENTS)} are removed; rename one of the modules"
                )
            raw_of.setdefault(name, raw)
            canonical = canonical_of.setdefault(id(param), name)
            if canonical == name:
                self.params[name] = param
            self.aliases[name] = canonical

    def lookup(self, name: str) -> str:
        """The canonical name of ``name``; a name the model lacks is a :class:`ConfigError`."""
        key = normalize_name(name)
        if key not in self.aliases:
            raise ConfigError(f"'{name}' is no parameter of {self.model_name}{self.suggest(key)}; names come from model.named_parameters()")
        return self.aliases[key]

    def match(self, pattern: str, source: str) -> list[str]:
        """Canonical names matching the glob ``pattern`` (or alias), in the model's order."""
        key = normalize_name(pattern)
        hits = {self.aliases[n] for n in self.aliases if fnmatch.fnmatchcase(n, key)}
        if not hits:
            raise ConfigError(
                f"{source}: '{key}' matches no parameter of {self.model_name}{self.suggest(key)}; "
                "names come from model.named_parameters()"
            )
        return [n for n in self.params if n in hits]

    def suggest(self, key: str) -> str:
        """`` (did you mean 'x'?)`` for the closest known name, or nothing."""
        return _suggest(key, self.aliases)


def _suggest(key: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
