"""Sparsity configurations: which parameters are pruned, how much, and with which scheme.

The authors' YAML form is accepted as it is::

    prune_ratios:
      layer1.0.conv1.weight: 0.8
      "layer4.*.conv*.weight": 0.95       # glob patterns are allowed
      fc.weight: {ratio: 0.5, scheme: filter}

Entries apply in file order; a later entry overrides an earlier one for the parameters it
matches. Instead of ratios, a target overall compression rate can be given, and the solver
picks one uniform ratio for the selected layers (entries in ``prune_ratios`` stay pinned)::

    target_rate: 8.71
    include: ["*conv*.weight", "*downsample.0.weight"]
    exclude: ["conv1.weight"]
    scheme: irregular

Parameter names are compared after removing the ``module.`` prefix added by DataParallel and
DistributedDataParallel (and ``_orig_mod.`` from ``torch.compile``), on both sides.
"""
from __future__ import annotations

import difflib
import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from torch import Tensor, nn

from .config import load_yaml
from .errors import ConfigError
from .projections import Scheme, keep_count, project, sparsity_mask

__all__ = ["PrunedLayer", "SparsityConfig", "normalize_name"]

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def normalize_name(name: str) -> str:
    """Strip the prefixes that model wrappers add to parameter names."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, stripped = name[len(prefix):], True
    return name


@dataclass
class PrunedLayer:
    """One pruned parameter: its (normalized) name, the live tensor, its ratio and scheme."""

    name: str
    param: nn.Parameter
    ratio: float
    scheme: Scheme

    def mask(self, tensor: Tensor | None = None) -> Tensor:
        """Keep-mask of the projection of ``tensor`` (default: the parameter) onto this layer's set."""
        return sparsity_mask(self.param if tensor is None else tensor, self.scheme, self.ratio)

    def project(self, tensor: Tensor | None = None) -> Tensor:
        """``Proj_S(tensor)``, eq. (10)."""
        return project(self.param.detach() if tensor is None else tensor, self.scheme, self.ratio)

    @property
    def budget(self) -> int:
        """Largest number of non-zero weights the layer may keep."""
        numel = self.param.numel()
        if self.scheme.kind == "irregular":
            return keep_count(numel, self.ratio)
        if self.scheme.kind == "nm":
            return numel // self.scheme.m * self.scheme.n
        shape = self.param.shape
        groups = {"filter": shape[0], "channel": shape[1], "column": numel // shape[0]}[self.scheme.kind]
        return keep_count(groups, self.ratio) * (numel // groups)


def _check_ratio(key: str, ratio: Any, source: str) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio):
        raise ConfigError(f"{source}: prune_ratios['{key}'] = {ratio!r} is not a number; give the fraction of weights to remove, e.g. 0.9")
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(
            f"{source}: prune_ratios['{key}'] = {ratio} is outside [0, 1); give the fraction of weights removed, "
            "e.g. 0.9 (keeps 10%; for a compression rate use target_rate)"
        )
    return float(ratio)


@dataclass
class SparsityConfig:
    """Per-parameter pruning ratios (or a target compression rate) and the pruning scheme."""

    prune_ratios: dict[str, Any] = field(default_factory=dict)
    scheme: str = "irregular"
    target_rate: float | None = None
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    source: str = "the sparsity config"

    def __post_init__(self) -> None:
        self._scheme(self.scheme)
        if not isinstance(self.prune_ratios, Mapping):
            raise ConfigError(f"{self.source}: prune_ratios must be a mapping 'name: ratio'")
        for key, value in self.prune_ratios.items():
            self._entry(key, value)  # validates ratio and scheme now, not at resolve time
        if self.target_rate is not None:
            if isinstance(self.target_rate, bool) or not isinstance(self.target_rate, (int, float)) or not self.target_rate >= 1.0:
                raise ConfigError(f"{self.source}: target_rate = {self.target_rate!r} must be a number >= 1, e.g. 8.71")
            if not self.include:
                self.include = ["*.weight"]
        elif not self.prune_ratios:
            raise ConfigError(f"{self.source}: prune_ratios is empty; list the layers to prune as 'name: ratio' or give target_rate")

    # construction -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "the sparsity config") -> "SparsityConfig":
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a sparsity config is a mapping with 'prune_ratios' or 'target_rate'")
        known = {"prune_ratios", "scheme", "target_rate", "include", "exclude"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; allowed keys are {sorted(known)}")
        return cls(
            prune_ratios=dict(data.get("prune_ratios") or {}),
            scheme=data.get("scheme", "irregular"),
            target_rate=data.get("target_rate"),
            include=list(data.get("include") or []),
            exclude=list(data.get("exclude") or []),
            source=source,
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SparsityConfig":
        return cls.from_dict(load_yaml(path, what="sparsity config") or {}, source=str(path))

    @classmethod
    def uniform(cls, ratio: float, include: Iterable[str] = ("*.weight",), scheme: str = "irregular") -> "SparsityConfig":
        """The same ratio for every parameter matching ``include``."""
        return cls(prune_ratios={pattern: ratio for pattern in include}, scheme=scheme)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"prune_ratios": dict(self.prune_ratios), "scheme": self.scheme}
        if self.target_rate is not None:
            data.update(target_rate=self.target_rate, include=list(self.include), exclude=list(self.exclude))
        return data

    # resolution -------------------------------------------------------------------------
    def _scheme(self, text: Any) -> Scheme:
        try:
            return Scheme.parse(text)
        except ConfigError as err:
            raise ConfigError(f"{self.source}: {err}") from None

    def _entry(self, key: str, value: Any) -> tuple[float | None, Scheme]:
        if isinstance(value, Mapping):
            scheme = self._scheme(value.get("scheme", self.scheme))
            ratio = value.get("ratio")
        else:
            scheme, ratio = self._scheme(self.scheme), value
        if ratio is None and scheme.kind == "nm":
            return scheme.nm_ratio, scheme
        return _check_ratio(key, ratio, self.source), scheme

    def resolve(self, model: nn.Module) -> list[PrunedLayer]:
        """The pruned layers of ``model``, in the model's parameter order."""
        params = {normalize_name(name): p for name, p in model.named_parameters()}
        chosen: dict[str, tuple[float, Scheme]] = {}
        for key, value in self.prune_ratios.items():
            ratio, scheme = self._entry(key, value)
            for name in _match(normalize_name(key), params, self.source, model):
                chosen[name] = (ratio, scheme)
        if self.target_rate is not None:
            free = [n for n in _select(params, self.include, self.exclude, self.source, model) if n not in chosen]
            chosen.update(self._solve(params, chosen, free))
        if not chosen:
            raise ConfigError(f"{self.source}: the config selects no parameter of {type(model).__name__}")
        layers = []
        for name, p in params.items():
            if name in chosen:
                ratio, scheme = chosen[name]
                if scheme.kind != "irregular" and p.dim() < 2:
                    raise ConfigError(f"{self.source}: '{name}' has shape {tuple(p.shape)}; '{scheme}' pruning needs a 2-D or 4-D weight")
                layers.append(PrunedLayer(name, p, ratio, scheme))
        return layers

    def _solve(self, params: Mapping[str, Tensor], pinned: Mapping[str, tuple[float, Scheme]], free: list[str]) -> dict[str, tuple[float, Scheme]]:
        """One uniform ratio for the ``free`` layers so the selected layers reach ``target_rate``."""
        scheme = Scheme.parse(self.scheme)
        total_pinned = sum(params[n].numel() for n in pinned)
        kept_pinned = sum(keep_count(params[n].numel(), r) for n, (r, _) in pinned.items())
        total_free = sum(params[n].numel() for n in free)
        if total_free == 0:
            raise ConfigError(f"{self.source}: target_rate given but include/exclude select no parameter to prune")
        kept_target = (total_pinned + total_free) / self.target_rate - kept_pinned
        ratio = 1.0 - kept_target / total_free
        if not 0.0 <= ratio < 1.0 or kept_target < len(free):  # every layer keeps at least one weight
            best = (total_pinned + total_free) / (kept_pinned + len(free))
            raise ConfigError(
                f"{self.source}: target rate {self.target_rate}x is unreachable with the selected layers "
                f"(reachable: 1x to about {best:.1f}x); lower target_rate or include more layers"
            )
        return {n: (ratio, scheme) for n in free}


def _suggest(key: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _match(pattern: str, params: Mapping[str, Tensor], source: str, model: nn.Module) -> list[str]:
    names = [n for n in params if fnmatch.fnmatchcase(n, pattern)]
    if not names:
        raise ConfigError(
            f"{source}: '{pattern}' matches no parameter of {type(model).__name__}{_suggest(pattern, params)}; "
            "names come from model.named_parameters()"
        )
    return names


def _select(params: Mapping[str, Tensor], include: Iterable[str], exclude: Iterable[str], source: str, model: nn.Module) -> list[str]:
    chosen = {n for pattern in include for n in _match(normalize_name(pattern), params, source, model)}
    for pattern in exclude:
        chosen -= set(_match(normalize_name(pattern), params, source, model))
    return [n for n in params if n in chosen]
