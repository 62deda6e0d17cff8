"""Declare a component's config dataclass as ROS parameters and read it back, validated.

Supported field types: bool, int, float, str and tuples of those (ROS array parameters).
Integers are accepted for float fields (YAML authors write ``rate_hz: 20``); any other type
mismatch, a missing required field or a value the dataclass rejects fails at startup with a
ConfigError naming the parameter, never later in a callback.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from pld_nodes.core.config import ConfigError, field_types

_ELEMENT_TYPES = (bool, int, float, str)


def _element_type(name: str, annotation: Any) -> tuple[type, bool]:
    """(element type, is_array) for a dataclass field annotation."""
    if annotation in _ELEMENT_TYPES:
        return annotation, False
    if typing.get_origin(annotation) is tuple:
        element = typing.get_args(annotation)[0]
        if element in _ELEMENT_TYPES:
            return element, True
    raise ConfigError(f"field {name!r}: type {annotation!r} cannot be a ROS parameter")


def _coerce(pname: str, value: Any, element: type) -> Any:
    if element is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, element) and not (element is int and isinstance(value, bool)):
        return value
    raise ConfigError(
        f"parameter {pname!r} must be {element.__name__}, got {type(value).__name__} {value!r}"
    )


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def declare_config(node: Node, cls: type, prefix: str = "") -> Any:
    """Declare one parameter per field of ``cls`` (defaults from the dataclass) and build it.

    Fields without a default become required parameters.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for name, annotation in field_types(cls).items():
        element, is_array = _element_type(name, annotation)
        default = _default(fields[name])
        pname = prefix + name
        descriptor = ParameterDescriptor(
            description=str(fields[name].metadata.get("doc", "")), dynamic_typing=True
        )
        initial = list(default) if is_array and default is not None else default
        value = node.declare_parameter(pname, initial, descriptor).value
        if value is None and is_array and default is not None:
            value = []  # a parameter file's `name: []` arrives as NOT_SET
        if value is None:
            raise ConfigError(f"required parameter {pname!r} ({annotation}) is not set")
        if is_array:
            if not isinstance(value, list | tuple) and not hasattr(value, "tolist"):
                raise ConfigError(f"parameter {pname!r} must be a list, got {value!r}")
            items = value.tolist() if hasattr(value, "tolist") else list(value)
            values[name] = tuple(_coerce(pname, v, element) for v in items)
        else:
            values[name] = _coerce(pname, value, element)
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid parameters for {cls.__name__}: {exc}") from exc
