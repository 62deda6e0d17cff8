"""Declare a component's config dataclass as ROS parameters and read it back, validated.

Supported field types: bool, int, float, str and tuples of those (ROS array parameters).
A bad value fails at startup with the dataclass's own message, never later in a callback.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from pld_nodes.core.config import ConfigError, field_types

_SCALAR_TYPES = {
    bool: Parameter.Type.BOOL,
    int: Parameter.Type.INTEGER,
    float: Parameter.Type.DOUBLE,
    str: Parameter.Type.STRING,
}
_ARRAY_TYPES = {
    bool: Parameter.Type.BOOL_ARRAY,
    int: Parameter.Type.INTEGER_ARRAY,
    float: Parameter.Type.DOUBLE_ARRAY,
    str: Parameter.Type.STRING_ARRAY,
}


def _param_type(name: str, annotation: Any) -> tuple[Parameter.Type, type, bool]:
    """(ROS parameter type, Python element type, is_array) for a dataclass field annotation."""
    if annotation in _SCALAR_TYPES:
        return _SCALAR_TYPES[annotation], annotation, False
    if typing.get_origin(annotation) is tuple:
        element = typing.get_args(annotation)[0]
        if element in _ARRAY_TYPES:
            return _ARRAY_TYPES[element], element, True
    raise ConfigError(f"field {name!r}: type {annotation!r} cannot be a ROS parameter")


def declare_config(node: Node, cls: type, prefix: str = "") -> Any:
    """Declare one parameter per field of ``cls`` (defaults from the dataclass) and build it.

    Fields without a default become required parameters: a missing one raises ConfigError.
    """
    values: dict[str, Any] = {}
    defaults = {f.name: f for f in dataclasses.fields(cls)}
    for name, annotation in field_types(cls).items():
        ptype, element, is_array = _param_type(name, annotation)
        field = defaults[name]
        if field.default is not dataclasses.MISSING:
            default: Any = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        pname = prefix + name
        descriptor = ParameterDescriptor(type=ptype.value, description=_doc(cls, name))
        # An empty list cannot carry its element type, so such parameters are declared by type.
        by_type = default is None or (is_array and len(default) == 0)
        try:
            if by_type:
                node.declare_parameter(pname, ptype, descriptor)
            else:
                node.declare_parameter(pname, list(default) if is_array else default, descriptor)
        except InvalidParameterTypeException as exc:
            raise ConfigError(f"parameter {pname!r} ({annotation}): {exc}") from exc
        try:
            value = node.get_parameter(pname).value
        except ParameterUninitializedException:
            value = None
        if value is None:
            if default is None:
                raise ConfigError(f"required parameter {pname!r} ({annotation}) is not set")
            value = default
        if is_array:
            value = tuple(element(v) for v in value)
        elif element is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        values[name] = value
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid parameters for {cls.__name__}: {exc}") from exc


def _doc(cls: type, name: str) -> str:
    """The field's docstring-style comment is not introspectable; use ``metadata['doc']`` if set."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return str(f.metadata.get("doc", ""))
    return ""
