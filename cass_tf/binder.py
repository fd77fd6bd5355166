"""Owns binding JSON to typed frozen dataclasses and back (the config's machinery, knowing no config field):
conversion by type hint with errors that name the dotted path, `--set dotted.path=value` overrides on the raw JSON,
and flattening for comparing two configs."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
import typing
from typing import Any, Literal, Sequence


class ConfigError(ValueError):
    """A config file, field or override is missing or wrong; the message names the dotted field path."""


def build(cls: type, raw: Any, path: str = "") -> Any:
    """An instance of dataclass `cls` from JSON-like `raw`, every field converted to its type hint (`convert`);
    ConfigError naming the dotted path of the first unknown, missing or ill-typed field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'config'}: expected an object, got {as_json(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields), key=str)
    if unknown:
        name = unknown[0]
        key = name if isinstance(name, str) and name.isidentifier() else as_json(name)  # one line, visibly quoted
        raise ConfigError(f"{path + '.' if path else ''}{key}: unknown key (allowed: {sorted(fields)})")
    values = {}
    for name, f in fields.items():
        where = f"{path}.{name}" if path else name
        if name in raw:
            values[name] = convert(hints[name], raw[name], where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: required field is missing")
    return cls(**values)


def convert(hint: Any, value: Any, path: str) -> Any:
    """`value` as type `hint` (Optional, a dataclass, Literal, tuple, bool, int, finite float, str), or ConfigError."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return convert(inner, value, path)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: must be one of {list(args)}, got {as_json(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {as_json(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected a list of {len(args)}, got {as_json(value)}")
        return tuple(convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {as_json(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {as_json(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {as_json(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float's range
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{path}: must be a finite number, got {as_json(value)}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {as_json(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {path}")


def to_plain(value: Any) -> Any:
    """Dataclasses as dicts and tuples as lists, recursively: what `build` reads back."""
    if dataclasses.is_dataclass(value):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [to_plain(v) for v in value]
    return value


def as_json(value: Any) -> str:
    """`value` as JSON text for an error message (repr where it is not JSON)."""
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Returns a copy of `raw` with each `a.b.c=value` set; value is JSON, or a plain string if it is not JSON."""
    result = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not all(part.isidentifier() for part in key.split(".")):
            raise ConfigError(f"override {item!r}: expected dotted.path=value (the path's parts are field names)")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        node = result
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[:depth + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{dotted.path: JSON text} of every leaf of a nested dict (e.g. `Config.to_dict()`), for comparing configs."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value)
    return flat
