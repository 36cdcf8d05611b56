"""Sparsity configurations: which parameters are pruned, how much, and with which scheme.

The authors' YAML form is accepted as it is::

    prune_ratios:
      layer1.0.conv1.weight: 0.8
      "layer4.*.conv*.weight": 0.95       # glob patterns are allowed
      fc.weight: {ratio: 0.5, scheme: filter}

Entries apply in file order; a later entry overrides an earlier one for the parameters it
matches. Instead of ratios, a target overall compression rate can be given, and the solver
gives the selected layers whole-unit budgets that reach it (entries in ``prune_ratios`` stay
pinned)::

    target_rate: 8.71
    include: ["*conv*.weight", "*downsample.0.weight"]   # default: every weight with >= 2 dims
    module_types: [Conv2d, Linear]                        # optional: only these modules' weights
    exclude: ["conv1.weight"]
    scheme: irregular

A glob pattern (in ``prune_ratios`` or ``include``) selects only parameters with at least two
dimensions, so ``"*.weight"`` takes no BatchNorm or LayerNorm scale; a 1-D parameter is pruned
only when named exactly. The selection is ``include`` (by default every parameter with at
least two dimensions, so no bias and no norm scale), narrowed to the parameters of
modules of ``module_types`` (class names, or classes, subclasses included) when given, minus
``exclude``. An N:M scheme fixes the ratio at ``1 - N/M``: it takes no ``target_rate`` and no
other ratio; with neither ``prune_ratios`` nor ``target_rate`` it prunes the selection N:M.

Every pruned layer keeps at least one weight (one group under a structured scheme); a ratio
that would empty a layer is refused, naming it. So are parameters that get sparse gradients
(``nn.Embedding(sparse=True)``): the penalty gradient is dense.

Names are compared after removing the components that wrappers add (``module.``,
``_orig_mod.``, ``_checkpoint_wrapped_module.``), wherever they occur, on both sides; a tied
parameter can be named by any of its names (see :mod:`core.names`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from torch import Tensor, nn

from .yaml_file import load_yaml
from ..errors import ConfigError
from .names import ParameterNames, normalize_name
from .projections import Scheme, keep_count, project, scheme_units, sparsity_mask
from .rate_solver import allocate_units

__all__ = ["PrunedLayer", "SparsityConfig", "normalize_name"]

_UNIT_NAMES = {"irregular": "weights", "filter": "filters", "channel": "channels", "column": "columns", "nm": "groups"}


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
        units, size = scheme_units(self.param.shape, self.scheme)
        if self.scheme.kind == "nm":
            return units * self.scheme.n
        return keep_count(units, self.ratio) * size


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
    """Which parameters are pruned, how much, and with which scheme.

    Give ``prune_ratios`` (name or glob pattern -> fraction of weights removed, or
    ``{ratio, scheme}``), or ``target_rate`` (total / non-zero weights over the pruned layers)
    with an optional selection (``include``, ``exclude``, ``module_types``), or both (the
    ratios are then pinned and the rest of the selection is solved). See the module docstring.
    """

    prune_ratios: dict[str, Any] = field(default_factory=dict)
    scheme: str = "irregular"
    target_rate: float | None = None
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    source: str = "the sparsity config"
    module_types: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        scheme = self._scheme(self.scheme)
        if not isinstance(self.prune_ratios, Mapping):
            raise ConfigError(f"{self.source}: prune_ratios must be a mapping 'name: ratio'")
        for key, value in self.prune_ratios.items():
            self._entry(key, value)  # validates ratio and scheme now, not at resolve time
        for kind in self.module_types:
            if not (isinstance(kind, str) or (isinstance(kind, type) and issubclass(kind, nn.Module))):
                raise ConfigError(f"{self.source}: module_types entry {kind!r} is neither a module class nor its name, e.g. Conv2d")
        if self.target_rate is not None:
            if isinstance(self.target_rate, bool) or not isinstance(self.target_rate, (int, float)) or not self.target_rate >= 1.0:
                raise ConfigError(f"{self.source}: target_rate = {self.target_rate!r} must be a number >= 1, e.g. 8.71")
            if scheme.kind == "nm":
                raise ConfigError(
                    f"{self.source}: N:M scheme '{scheme}' fixes the ratio at {scheme.nm_ratio:g}, so target_rate "
                    f"{self.target_rate} cannot be reached by it; drop target_rate to prune the selection {scheme}, or use another scheme"
                )
        elif not self.prune_ratios and scheme.kind != "nm":
            raise ConfigError(f"{self.source}: prune_ratios is empty; list the layers to prune as 'name: ratio' or give target_rate")

    # construction -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "the sparsity config") -> "SparsityConfig":
        """A config from its YAML form (a mapping); unknown keys are a :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a sparsity config is a mapping with 'prune_ratios' or 'target_rate'")
        known = {"prune_ratios", "scheme", "target_rate", "include", "exclude", "module_types"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; allowed keys are {sorted(known)}")
        return cls(
            prune_ratios=dict(data.get("prune_ratios") or {}),
            scheme=data.get("scheme", "irregular"),
            target_rate=data.get("target_rate"),
            include=list(data.get("include") or []),
            exclude=list(data.get("exclude") or []),
            module_types=list(data.get("module_types") or []),
            source=source,
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SparsityConfig":
        """A config read from a YAML file (the authors' ``prune_ratios`` form, or ``target_rate``)."""
        return cls.from_dict(load_yaml(path, what="sparsity config") or {}, source=str(path))

    @classmethod
    def uniform(cls, ratio: float, include: Iterable[str] = ("*.weight",), scheme: str = "irregular") -> "SparsityConfig":
        """The same ratio for every parameter matching ``include`` (by default every weight with >= 2 dims)."""
        return cls(prune_ratios={pattern: ratio for pattern in include}, scheme=scheme)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form: ``from_dict(config.to_dict())`` is the same config."""
        data: dict[str, Any] = {"prune_ratios": dict(self.prune_ratios), "scheme": self.scheme}
        if self.target_rate is not None or Scheme.parse(self.scheme).kind == "nm":
            if self.target_rate is not None:
                data["target_rate"] = self.target_rate
            data.update(include=list(self.include), exclude=list(self.exclude))
        if self.module_types:
            data["module_types"] = [k if isinstance(k, str) else k.__name__ for k in self.module_types]
        return data

    # resolution -------------------------------------------------------------------------
    def _scheme(self, text: Any) -> Scheme:
        try:
            return Scheme.parse(text)
        except ConfigError as err:
            raise ConfigError(f"{self.source}: {err}") from None

    def _entry(self, key: str, value: Any) -> tuple[float, Scheme]:
        if isinstance(value, Mapping):
            scheme = self._scheme(value.get("scheme", self.scheme))
            ratio = value.get("ratio")
        else:
            scheme, ratio = self._scheme(self.scheme), value
        if scheme.kind != "nm":
            return _check_ratio(key, ratio, self.source), scheme
        if ratio is not None and not (isinstance(ratio, (int, float)) and abs(ratio - scheme.nm_ratio) < 1e-9):
            raise ConfigError(
                f"{self.source}: prune_ratios['{key}'] = {ratio!r} next to N:M scheme '{scheme}', which fixes the ratio "
                f"at {scheme.nm_ratio:g}; drop the ratio or use another scheme"
            )
        return scheme.nm_ratio, scheme

    def resolve(self, model: nn.Module) -> list[PrunedLayer]:
        """The pruned layers of ``model``, in the model's parameter order.

        Raises :class:`ConfigError` for names that match nothing, for a layer the scheme
        cannot prune (its shape, sparse gradients) and for a ratio that would empty a layer.
        """
        names = ParameterNames(model)
        params = names.params
        chosen: dict[str, tuple[float, Scheme]] = {}
        for key, value in self.prune_ratios.items():
            ratio, scheme = self._entry(key, value)
            for name in _pattern(names, key, self.source):
                chosen[name] = (ratio, scheme)
        sparse = _sparse_grad_owners(model)
        for name, (_, scheme) in chosen.items():
            self._check_shape(name, params[name], scheme, sparse)
        scheme = Scheme.parse(self.scheme)
        if self.target_rate is not None or not self.prune_ratios:
            free = [n for n in self._selection(model, names) if n not in chosen]
            for name in free:
                self._check_shape(name, params[name], scheme, sparse)
            if self.target_rate is None:  # an N:M scheme over the selection
                chosen.update({n: (scheme.nm_ratio, scheme) for n in free})
            elif not free:
                raise ConfigError(f"{self.source}: target_rate given but include/exclude select no parameter to prune "
                                  "beyond those prune_ratios names; include more layers or drop target_rate")
            else:
                pinned = [PrunedLayer(n, params[n], r, s) for n, (r, s) in chosen.items()]
                chosen.update(self._solve(pinned, [(n, params[n]) for n in free], scheme))
        if not chosen:
            raise ConfigError(f"{self.source}: the config selects no parameter of {type(model).__name__}")
        layers = [PrunedLayer(name, p, *chosen[name]) for name, p in params.items() if name in chosen]
        for layer in layers:
            _check_keeps_some(layer, self.source)
        return layers

    def _selection(self, model: nn.Module, names: ParameterNames) -> list[str]:
        """``include`` (default: parameters with >= 2 dims), narrowed by ``module_types``, minus ``exclude``."""
        if self.include:
            chosen = {n for pattern in self.include for n in _pattern(names, pattern, self.source)}
        else:
            chosen = {n for n, p in names.params.items() if p.dim() >= 2}
        if self.module_types:
            chosen &= _owned_by_types(model, names, self.module_types, self.source)
        for pattern in self.exclude:
            chosen -= set(names.match(pattern, self.source))
        selected = [n for n in names.params if n in chosen]
        if not selected:
            raise ConfigError(f"{self.source}: include/exclude/module_types select no parameter of {type(model).__name__} to prune")
        return selected

    def _check_shape(self, name: str, p: Tensor, scheme: Scheme, sparse: Mapping[int, nn.Module]) -> None:
        if id(p) in sparse:
            raise ConfigError(
                f"{self.source}: '{name}' gets sparse gradients ({type(sparse[id(p)]).__name__}(sparse=True)), and the "
                "penalty gradient is dense; build that module with sparse=False or leave the parameter out"
            )
        if scheme.kind != "irregular" and p.dim() < 2:
            raise ConfigError(f"{self.source}: '{name}' has shape {tuple(p.shape)}; '{scheme}' pruning needs a 2-D or 4-D weight")
        if scheme.kind == "nm" and p.shape[1] % scheme.m:
            raise ConfigError(
                f"{self.source}: '{name}' has {p.shape[1]} input channels; N:M pruning with M={scheme.m} needs a multiple "
                f"of {scheme.m} (groups run along the input channels); leave it out or use another scheme for it"
            )

    def _solve(self, pinned: list[PrunedLayer], free: list[tuple[str, Tensor]], scheme: Scheme) -> dict[str, tuple[float, Scheme]]:
        """Whole-unit budgets for the ``free`` layers so that all selected layers reach ``target_rate``."""
        units, sizes = zip(*(scheme_units(p.shape, scheme) for _, p in free))
        total_free = sum(u * s for u, s in zip(units, sizes))
        total = total_free + sum(layer.param.numel() for layer in pinned)
        kept_pinned = sum(layer.budget for layer in pinned)
        wanted = round(total / self.target_rate)
        lowest, highest = kept_pinned + sum(sizes), kept_pinned + total_free  # one unit per layer .. everything
        if not lowest <= wanted <= highest:
            raise ConfigError(
                f"{self.source}: target rate {self.target_rate}x is unreachable with the selected layers "
                f"(reachable: {total / highest:.3g}x to about {total / lowest:.1f}x, every layer keeping at least one "
                f"of its {_UNIT_NAMES[scheme.kind]}); lower target_rate or include more layers"
            )
        counts = allocate_units(units, sizes, wanted - kept_pinned)
        kept = kept_pinned + sum(k * s for k, s in zip(counts, sizes))
        if abs(kept - wanted) > 0.01 * wanted:
            raise ConfigError(
                f"{self.source}: target rate {self.target_rate}x cannot be met within 1% with whole {_UNIT_NAMES[scheme.kind]} "
                f"of the selected layers (nearest: {total / kept:.3f}x); use that rate, include more layers or another scheme"
            )
        return {name: (1.0 - k / u, scheme) for (name, _), k, u in zip(free, counts, units)}


def _pattern(names: ParameterNames, pattern: str, source: str) -> list[str]:
    """Parameters named by ``pattern``: a glob pattern selects only those with at least 2 dims."""
    hits = names.match(pattern, source)
    if not any(c in pattern for c in "*?["):
        return hits
    weights = [n for n in hits if names.params[n].dim() >= 2]
    if not weights:
        raise ConfigError(
            f"{source}: '{pattern}' matches only parameters with fewer than 2 dimensions (such as '{hits[0]}'), and "
            "glob patterns select weights with at least 2; name 1-D parameters one by one to prune them"
        )
    return weights


def _check_keeps_some(layer: PrunedLayer, source: str) -> None:
    """Refuse a ratio that rounds a whole layer away."""
    units, _ = scheme_units(layer.param.shape, layer.scheme)
    if layer.scheme.kind != "nm" and keep_count(units, layer.ratio) < 1:
        unit = _UNIT_NAMES[layer.scheme.kind]
        raise ConfigError(
            f"{source}: '{layer.name}' would keep 0 of its {units} {unit} at ratio {layer.ratio} ('{layer.scheme}'); "
            f"give it a ratio of at most {(units - 1) / units:.4g} or leave it out"
        )


def _sparse_grad_owners(model: nn.Module) -> dict[int, nn.Module]:
    """``id(param) -> module`` for the parameters of modules that produce sparse gradients."""
    return {id(p): m for m in model.modules() if getattr(m, "sparse", False) is True for p in m.parameters(recurse=False)}


def _owned_by_types(model: nn.Module, names: ParameterNames, kinds: Iterable[Any], source: str) -> set[str]:
    """Canonical names of the parameters held directly by modules of the given types."""
    owned: set[str] = set()
    for kind in kinds:
        hits = [m for m in model.modules() if _is_kind(m, kind)]
        if not hits:
            label = kind if isinstance(kind, str) else kind.__name__
            raise ConfigError(f"{source}: module_types '{label}' matches no module of {type(model).__name__}; use class names such as Conv2d or Linear")
        for module in hits:
            ids = {id(p) for p in module.parameters(recurse=False)}
            owned |= {n for n, p in names.params.items() if id(p) in ids}
    return owned


def _is_kind(module: nn.Module, kind: Any) -> bool:
    if isinstance(kind, str):
        return any(cls.__name__ == kind for cls in type(module).__mro__)
    return isinstance(module, kind)
