"""Run configurations: YAML files with a ``profiles`` section, and ``--set key=value`` overrides.

A run config looks like::

    model: resnet18
    epochs: 40
    profiles:
      paper: {batch_size: 128}
      smoke: {batch_size: 32, epochs: 2}

``load_run_config(path, profile)`` returns the top level deep-merged with ``profiles[profile]``.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from ..errors import ConfigError
from ..pruning.yaml_file import YamlLoader, load_yaml, parse_yaml

__all__ = ["PROFILES", "YamlLoader", "parse_yaml", "load_yaml", "load_run_config", "deep_merge", "apply_overrides", "settings_digest"]

PROFILES = ("smoke", "paper")


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in; nested mappings merge, everything else is replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_run_config(path: str | Path, profile: str) -> dict[str, Any]:
    """The config at ``path`` for ``profile`` (``smoke`` or ``paper``)."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile '{profile}' (from --profile or $PROFILE); use one of {', '.join(PROFILES)}")
    data = load_yaml(path) or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a run config is a mapping of settings")
    profiles = data.pop("profiles", {}) or {}
    if profile not in profiles and profiles:
        raise ConfigError(f"{path} has no '{profile}' profile (it has {sorted(profiles)}); add one or pick another --profile")
    merged = deep_merge(data, profiles.get(profile, {}))
    merged["profile"] = profile
    return merged


def apply_overrides(config: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides; values are parsed as YAML (``3``, ``0.1``, ``[1, 2]``).

    The sections a key walks through must exist in ``config`` (a top-level key too), so a typo
    is an error rather than a setting nothing reads; a new key inside an existing section is
    allowed (optional settings such as ``data.train_subset``).
    """
    result = copy.deepcopy(dict(config))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not key=value; write e.g. --set epochs=5")
        key, text = item.split("=", 1)
        try:
            value = parse_yaml(text)
        except yaml.YAMLError:
            raise ConfigError(f"override '{item}': cannot parse the value; quote strings, e.g. --set name='a b'") from None
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override '{item}': '{key}' is not a key; write e.g. --set pruning.epochs=5")
        node = result
        for depth, part in enumerate(parts[:-1]):
            if part in node and not isinstance(node[part], dict):
                section = ".".join(parts[:depth + 1])
                raise ConfigError(f"override '{item}': '{section}' is {'null' if node[part] is None else repr(node[part])} in the config, not a section; "
                                  f"set it whole instead, e.g. --set {section}='{{key: value}}'")
            if part not in node:
                raise ConfigError(f"override '{item}': {_unknown(result, parts[:depth + 1], 'section')}")
            node = node[part]
        leaf = parts[-1]
        if leaf not in node:
            typo = difflib.get_close_matches(leaf, [str(k) for k in node], n=1, cutoff=0.85)
            if len(parts) == 1 or typo:  # a new top-level key, or a near-copy of an existing one, is a typo
                raise ConfigError(f"override '{item}': {_unknown(result, parts, 'key')}")
        node[leaf] = value
    return result


def _keys(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every dotted key of ``config`` (sections and leaves)."""
    keys = []
    for key, value in config.items():
        keys.append(prefix + str(key))
        if isinstance(value, Mapping):
            keys += _keys(value, f"{prefix}{key}.")
    return keys


def _unknown(config: Mapping[str, Any], parts: list[str], what: str) -> str:
    """'<key> is not a <what> of the config (did you mean ...?); ...' for an override."""
    key = ".".join(parts)
    keys = _keys(config)
    close = [k for k in keys if k.endswith("." + key)][:3] or difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    hint = (f"did you mean {' or '.join(repr(k) for k in close)}?" if close
            else f"the config's top-level keys are {', '.join(sorted(map(str, config)))}")
    return f"'{key}' is not a {what} of the config; {hint}"


def settings_digest(settings: Mapping[str, Any]) -> str:
    """A short, stable hash of ``settings`` (key order does not matter), e.g. to name a cache file
    by everything its contents depend on."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
