"""The base-policy interface: every backend (built-in torch VLA, ONNX, openpi server) maps a
:class:`PolicyObservation` to an action chunk of shape (horizon, action_dim) in the normalised
action space, and describes itself with a :class:`PolicySpec`."""

from pld_nodes.core.policy.interface import (
    Policy,
    PolicyObservation,
    PolicySpec,
    check_chunk,
)

__all__ = ["Policy", "PolicyObservation", "PolicySpec", "check_chunk"]
