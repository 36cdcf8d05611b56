"""YAML files as this project reads them: scientific-notation floats (``1e-4``) and ``2:4``
strings, and one clear error for a missing or malformed file."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["YamlLoader", "parse_yaml", "load_yaml"]


class YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``) and ``2:4`` as a
    string (YAML 1.1 reads it as the base-60 integer 124)."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` with scientific-notation floats."""
    return yaml.load(text, Loader=YamlLoader)


def load_yaml(path: str | Path, what: str = "config file") -> Any:
    """Parse a YAML file; a missing file or a syntax error is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}; check the path")
    try:
        return parse_yaml(path.read_text())
    except yaml.YAMLError as err:
        lines = [m.line + 1 for m in (getattr(err, "context_mark", None), getattr(err, "problem_mark", None)) if m is not None]
        where = f" at line {lines[0]}" if lines else ""
        raise ConfigError(f"{path}: malformed YAML{where}; fix the syntax there") from None
