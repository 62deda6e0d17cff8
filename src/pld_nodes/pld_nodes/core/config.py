"""Frozen-dataclass configuration helpers shared by every component.

Each component has one frozen dataclass whose fields are documented where they are declared and
checked in ``__post_init__``. Nodes mirror the fields 1:1 as ROS parameters
(``pld_nodes.ros.params``), so a YAML file, a test and a script all configure the same object.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or inconsistent. Fatal at startup."""


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type of each dataclass field (handles ``from __future__ import annotations``)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def require_finite(
    name: str,
    value: float,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_inclusive: bool = True,
) -> None:
    """Raise ConfigError quoting ``value`` unless it is finite and inside the given range."""
    ok_low = value >= low if low_inclusive else value > low
    if not (math.isfinite(value) and ok_low and value <= high):
        bound = "[" if low_inclusive else "("
        raise ConfigError(f"{name} must be finite and in {bound}{low}, {high}], got {value!r}")


def from_mapping(cls: type, values: dict[str, Any]) -> Any:
    """Build ``cls`` from a plain mapping, rejecting unknown keys with the list of known ones."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {unknown}; known keys: {sorted(known)}")
    try:
        return cls(**values)
    except TypeError as exc:  # missing required fields
        raise ConfigError(f"{cls.__name__}: {exc}") from exc
