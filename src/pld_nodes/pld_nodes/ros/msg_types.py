"""Resolve ROS message classes from their names ("std_msgs/msg/String") with clear errors."""

from __future__ import annotations

import importlib
from typing import Any

from pld_nodes.core.config import ConfigError


def message_class(type_name: str) -> Any:
    """Import the message class for ``pkg/msg/Type`` (``pkg/Type`` is accepted too)."""
    parts = type_name.strip().split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"message type {type_name!r} is not of the form 'package/msg/Type'")
    package, kind, name = parts
    try:
        module = importlib.import_module(f"{package}.{kind}")
    except ImportError as exc:
        raise ConfigError(
            f"message package {package!r} for {type_name!r} not found: {exc}"
        ) from exc
    cls = getattr(module, name, None)
    if cls is None:
        raise ConfigError(f"message type {name!r} not found in {package}.{kind}")
    return cls
