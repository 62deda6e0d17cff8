"""The normalised action convention shared by policies, the arbiter, safety, sim and robot.

An action is ``ACTION_DIM`` float values in [-1, 1]: a delta end-effector pose
(dx, dy, dz, droll, dpitch, dyaw) in the robot base frame, then the gripper (-1 open, +1 close).
Each consumer maps it to SI units with its own limits (sim: robosuite OSC_POSE output range;
robot: the task YAML). Validation fails closed: anything not finite, of the wrong length or out
of range is refused with the reason, and the caller holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ACTION_DIM = 7
ACTION_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")
ACTION_LOW, ACTION_HIGH = -1.0, 1.0
GRIPPER_INDEX = 6
GRIPPER_OPEN, GRIPPER_CLOSE = -1.0, 1.0


class InvalidAction(ValueError):
    """An action was refused; ``reason`` is one short phrase for logs and diagnostics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"invalid action ({reason}): {detail}")
        self.reason = reason


def validate_action(
    values: Sequence[float] | np.ndarray,
    dim: int = ACTION_DIM,
    low: float = ACTION_LOW,
    high: float = ACTION_HIGH,
    tolerance: float = 1e-6,
    clip_out_of_range: bool = False,
) -> np.ndarray:
    """Return ``values`` as a float64 array of shape (dim,), or raise InvalidAction.

    Robot-facing callers refuse out-of-range values; ``clip_out_of_range`` is for the sim env's
    own ``step``, where a Gaussian policy's small overshoot is normal and clipping is the
    documented Gymnasium behaviour.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidAction("not numeric", f"got {values!r}") from exc
    if arr.ndim != 1 or arr.shape[0] != dim:
        raise InvalidAction("wrong shape", f"expected {dim} values, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InvalidAction("non-finite", f"indices {np.flatnonzero(bad).tolist()} are NaN/inf")
    outside = (arr < low - tolerance) | (arr > high + tolerance)
    if outside.any() and not clip_out_of_range:
        idx = np.flatnonzero(outside).tolist()
        with np.errstate(over="ignore"):  # rounding 1e308 for the message must not warn
            shown = arr[idx].round(4).tolist()
        raise InvalidAction("out of range", f"indices {idx} = {shown} not in [{low}, {high}]")
    return np.clip(arr, low, high)


def hold_action(last_gripper: float = GRIPPER_OPEN, dim: int = ACTION_DIM) -> np.ndarray:
    """Zero motion, gripper kept where it was last commanded."""
    action = np.zeros(dim, dtype=np.float64)
    action[GRIPPER_INDEX] = last_gripper
    return action
