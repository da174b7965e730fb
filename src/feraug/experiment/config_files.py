"""Experiment YAML files that build on another (``extends:``).

A protocol run with another network or at another scale differs from its parent config in a
few keys; copying the whole file would let the two drift apart. ``extends: zhu2018.yaml`` (a
path relative to the extending file) reads the parent first and merges the child over it:
mappings merge key by key at every depth, any other value (lists included: arms, generators,
seeds) replaces the parent's whole. Chains are allowed; a cycle is a ConfigError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feraug.classifier.config import read_yaml
from feraug.errors import ConfigError
from feraug.experiment.stage_specs import data_shorthand

EXTENDS = "extends"


def merged(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` over ``parent``: mappings merged recursively, everything else replaced."""
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def read_experiment_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of an experiment config file with its ``extends`` chain resolved."""
    path = Path(path)
    here = path.resolve()
    if here in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, here))
        raise ConfigError(f"{path}: `extends` goes round in a circle ({chain})")
    values = read_yaml(path)
    parent = values.pop(EXTENDS, None)
    if parent is None:
        return values
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{path}: `extends` must name one config file, got {parent!r}")
    parent_path = path.parent / parent
    if not parent_path.is_file():
        raise ConfigError(f"{path}: `extends` names {parent_path}, which is not a file")
    base = read_experiment_yaml(parent_path, (*_seen, here))
    for side in (base, values):  # `data: PATH` is `data: {path: PATH}` on either side
        if "data" in side:
            side["data"] = data_shorthand(side["data"])
    return merged(base, values)
