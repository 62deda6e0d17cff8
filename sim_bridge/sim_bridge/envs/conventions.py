"""Action and observation conventions shared by the simulator and the real-robot driver.

Keeping the scaling in one module means a policy trained in sim emits actions that mean the same
metres and radians on the real Franka; the real driver must import these constants, not copy them.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Final

import numpy as np

ACTION_DIM: Final = 7
"""(dx, dy, dz, droll, dpitch, dyaw, gripper), every entry normalised to [-1, 1]."""

ACTION_LOW: Final = -1.0
ACTION_HIGH: Final = 1.0

MAX_DELTA_POS_M: Final = 0.05
"""Metres of end-effector translation per control step commanded by a normalised 1.0.

Equals robosuite's OSC_POSE ``output_max`` for position; the translation is expressed in the robot
base frame (axis-aligned with the world frame in every task here)."""

MAX_DELTA_ROT_RAD: Final = 0.5
"""Radians of rotation per control step commanded by a normalised 1.0 (OSC_POSE ``output_max``).

The three rotation entries form an axis-angle vector in the base frame."""

GRIPPER_OPEN: Final = -1.0
GRIPPER_CLOSE: Final = 1.0

DEFAULT_CONTROL_FREQ_HZ: Final = 20.0

ACTION_SCALE_SI: Final = np.array(
    [MAX_DELTA_POS_M] * 3 + [MAX_DELTA_ROT_RAD] * 3 + [1.0], dtype=np.float64
)
ACTION_SCALE_SI.flags.writeable = False
"""Per-entry multiplier from normalised action to SI (m, m, m, rad, rad, rad, unitless)."""

PROPRIO_LAYOUT: Final = MappingProxyType(
    {
        "eef_pos": slice(0, 3),  # metres, world frame
        "eef_quat_xyzw": slice(3, 7),  # unit quaternion, scalar last
        "joint_pos": slice(7, 14),  # radians, Panda joints 1..7
        "gripper_qpos": slice(14, 16),  # metres, left/right finger joints
    }
)
"""Slices of the flat ``proprio`` observation vector."""

PROPRIO_DIM: Final = 16

OBJECT_STATE_STRIDE: Final = 7
"""Each object in ``object_state`` contributes position (3, m) then quaternion (4, xyzw)."""


def validate_action(action: Any) -> np.ndarray:
    """Return a clipped float64 copy of ``action`` or raise ValueError.

    Wrong shapes and non-finite values raise (rather than being silently repaired) so that the ROS
    node can catch the error and hold position; merely out-of-range values are clipped because
    policies with Gaussian heads routinely overshoot by a little.
    """
    try:
        arr = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"action must be numeric, got {action!r}") from exc
    if arr.shape != (ACTION_DIM,):
        raise ValueError(f"action must have shape ({ACTION_DIM},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"action must be finite, got {arr.tolist()}")
    return np.clip(arr, ACTION_LOW, ACTION_HIGH)


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
