"""Serving policies over openpi's websocket protocol (msgpack-numpy frames), and consuming them.

``PolicyServer`` exposes any :class:`~pld_nodes.core.policy.Policy`; ``OpenPiPolicy`` is a
Policy backed by a remote server (ours or an openpi ``serve_policy.py``). ROS-free.
"""

from pld_nodes.core.serving.observation_keys import ObservationError, ObservationKeys
from pld_nodes.core.serving.openpi_client import OpenPiPolicy
from pld_nodes.core.serving.openpi_server import PolicyServer
from pld_nodes.core.serving.protocol import (
    OpenPiProtocolError,
    PolicyAuthError,
    PolicyServerError,
)

__all__ = [
    "ObservationError",
    "ObservationKeys",
    "OpenPiPolicy",
    "OpenPiProtocolError",
    "PolicyAuthError",
    "PolicyServer",
    "PolicyServerError",
]
