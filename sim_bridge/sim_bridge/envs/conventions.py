"""The simulator's side of the action/observation conventions.

The normalised action (``pld_nodes.core.actions``) and the proprio layout
(``pld_nodes.core.observation``) are shared by every part of the stack and re-exported here;
this module adds what is specific to the sim: the OSC_POSE scaling from normalised actions to
metres and radians per control step.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from pld_nodes.core.actions import (
    ACTION_DIM,
    ACTION_HIGH,
    ACTION_LOW,
    GRIPPER_CLOSE,
    GRIPPER_OPEN,
)
from pld_nodes.core.actions import validate_action as _validate_action
from pld_nodes.core.observation import PROPRIO_DIM, PROPRIO_LAYOUT

__all__ = [
    "ACTION_DIM",
    "ACTION_HIGH",
    "ACTION_LOW",
    "ACTION_SCALE_SI",
    "DEFAULT_CONTROL_FREQ_HZ",
    "GRIPPER_CLOSE",
    "GRIPPER_OPEN",
    "MAX_DELTA_POS_M",
    "MAX_DELTA_ROT_RAD",
    "OBJECT_STATE_STRIDE",
    "PROPRIO_DIM",
    "PROPRIO_LAYOUT",
    "normalised_to_si",
    "osc_pose_controller_config",
    "si_to_normalised",
    "validate_action",
]

MAX_DELTA_POS_M: Final = 0.05
"""Metres of end-effector translation per control step commanded by a normalised 1.0.

Equals robosuite's OSC_POSE ``output_max`` for position; the translation is expressed in the robot
base frame (axis-aligned with the world frame in every task here)."""

MAX_DELTA_ROT_RAD: Final = 0.5
"""Radians of rotation per control step commanded by a normalised 1.0 (OSC_POSE ``output_max``).

The three rotation entries form an axis-angle vector in the base frame."""


DEFAULT_CONTROL_FREQ_HZ: Final = 20.0

ACTION_SCALE_SI: Final = np.array(
    [MAX_DELTA_POS_M] * 3 + [MAX_DELTA_ROT_RAD] * 3 + [1.0], dtype=np.float64
)
ACTION_SCALE_SI.flags.writeable = False
"""Per-entry multiplier from normalised action to SI (m, m, m, rad, rad, rad, unitless)."""

OBJECT_STATE_STRIDE: Final = 7
"""Each object in ``object_state`` contributes position (3, m) then quaternion (4, xyzw)."""


def validate_action(action: Any) -> np.ndarray:
    """Return a clipped float64 copy of ``action`` or raise ValueError.

    Wrong shapes and non-finite values raise (rather than being silently repaired) so that the ROS
    node can catch the error and hold position; merely out-of-range values are clipped because
    policies with Gaussian heads routinely overshoot by a little.
    """
    return _validate_action(action, ACTION_DIM, clip_out_of_range=True)


def normalised_to_si(action: np.ndarray) -> np.ndarray:
    """Convert a normalised action to (m, m, m, rad, rad, rad, gripper) per control step."""
    return validate_action(action) * ACTION_SCALE_SI


def si_to_normalised(delta: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalised_to_si`, clipped to the action box (for scripted experts)."""
    arr = np.asarray(delta, dtype=np.float64)
    if arr.shape != (ACTION_DIM,):
        raise ValueError(f"delta must have shape ({ACTION_DIM},), got shape {arr.shape}")
    return np.clip(arr / ACTION_SCALE_SI, ACTION_LOW, ACTION_HIGH)


def osc_pose_controller_config() -> dict[str, Any]:
    """robosuite OSC_POSE controller config whose limits are the constants above."""
    return {
        "type": "OSC_POSE",
        "input_max": ACTION_HIGH,
        "input_min": ACTION_LOW,
        "output_max": [MAX_DELTA_POS_M] * 3 + [MAX_DELTA_ROT_RAD] * 3,
        "output_min": [-MAX_DELTA_POS_M] * 3 + [-MAX_DELTA_ROT_RAD] * 3,
        "kp": 150,
        "damping_ratio": 1,
        "impedance_mode": "fixed",
        "kp_limits": [0, 300],
        "damping_ratio_limits": [0, 10],
        "position_limits": None,
        "orientation_limits": None,
        "uncouple_pos_ori": True,
        "control_delta": True,
        "interpolation": None,
        "ramp_ratio": 0.2,
    }
