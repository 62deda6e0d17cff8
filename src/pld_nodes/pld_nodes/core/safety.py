"""Safety rules between the arbiter's candidate command and the robot, without ROS.

The safety monitor is the only path to the arm. Each candidate action (normalised delta EE pose
+ gripper, ``core.actions``) is either passed on *made safe* or replaced by a hold (zero
motion, gripper as last sent). Rules, in order:

1. a latched e-stop holds everything until :meth:`SafetyMonitor.reset_estop`;
2. malformed input (wrong length, NaN/inf, out of [-1, 1]) → hold;
3. a command older than ``max_command_age_s`` (by its stamp) → hold;
4. no robot state, or state older than ``max_state_age_s`` → hold;
5. external force or torque above threshold → hold (until it drops);
6. measured EE speed above ``max_ee_speed_mps`` → hold;
7. a joint within ``joint_margin_rad`` of its limit → hold motion (gripper still allowed);
8. translation/rotation per step capped (norm scaled down, direction kept);
9. the translation target (EE position + step) clipped into the workspace box; outside the
   box, only motion back towards it is kept;
10. gripper clipped to its configured range.

``tick(now)`` is the stale-input watchdog: no accepted command for ``command_timeout_s`` →
hold. Every intervention (a hold or a modification) is counted by reason.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pld_nodes.core.actions import (
    ACTION_DIM,
    GRIPPER_INDEX,
    GRIPPER_OPEN,
    InvalidAction,
    hold_action,
    validate_action,
)
from pld_nodes.core.config import ConfigError, from_mapping, require_finite

N_JOINTS = 7


@dataclass(frozen=True)
class SafetyLimits:
    """Limits from the task YAML (``safety:`` section). Units: m, rad, s, N, N·m.

    ``translation_scale_m`` / ``rotation_scale_rad`` map a normalised action of 1.0 to a step
    (what the driver / sim does with it); the per-step caps are in the same SI units.
    """

    workspace_min: tuple[float, float, float]
    workspace_max: tuple[float, float, float]
    translation_scale_m: float
    rotation_scale_rad: float
    max_translation_per_step_m: float
    max_rotation_per_step_rad: float
    max_ee_speed_mps: float
    joint_lower: tuple[float, ...]
    joint_upper: tuple[float, ...]
    joint_margin_rad: float
    max_force_n: float
    max_torque_nm: float
    gripper_min: float = -1.0
    gripper_max: float = 1.0
    command_timeout_s: float = 0.5
    max_command_age_s: float = 0.25
    max_state_age_s: float = 0.1

    def __post_init__(self) -> None:
        for name in ("workspace_min", "workspace_max"):
            value = getattr(self, name)
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ConfigError(f"{name} must be 3 finite numbers, got {value!r}")
        if any(lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max, strict=True)):
            raise ConfigError(
                f"workspace_min {self.workspace_min} must be below workspace_max "
                f"{self.workspace_max} on every axis"
            )
        for name in (
            "translation_scale_m", "rotation_scale_rad", "max_translation_per_step_m",
            "max_rotation_per_step_rad", "max_ee_speed_mps", "max_force_n", "max_torque_nm",
            "command_timeout_s", "max_command_age_s", "max_state_age_s",
        ):  # fmt: skip
            require_finite(name, getattr(self, name), low=0.0, low_inclusive=False)
        require_finite("joint_margin_rad", self.joint_margin_rad, low=0.0)
        for name in ("joint_lower", "joint_upper"):
            value = getattr(self, name)
            if len(value) != N_JOINTS or not all(math.isfinite(v) for v in value):
                raise ConfigError(f"{name} must be {N_JOINTS} finite numbers, got {value!r}")
        if any(
            hi - lo <= 2 * self.joint_margin_rad
            for lo, hi in zip(self.joint_lower, self.joint_upper, strict=True)
        ):
            raise ConfigError(
                f"joint limits {self.joint_lower} .. {self.joint_upper} leave no room inside "
                f"the margin {self.joint_margin_rad} rad"
            )
        require_finite("gripper_min", self.gripper_min, low=-1.0, high=1.0)
        require_finite("gripper_max", self.gripper_max, low=-1.0, high=1.0)
        if self.gripper_min > self.gripper_max:
            raise ConfigError(f"gripper_min {self.gripper_min} > gripper_max {self.gripper_max}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> SafetyLimits:
        """Limits from a task YAML's ``safety:`` mapping; missing keys are a ConfigError."""
        if not values:
            raise ConfigError("the task configuration has no 'safety' limits")
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return from_mapping(cls, converted)


@dataclass(frozen=True)
class RobotState:
    """What the rules need from the robot, stamped (s, the robot's clock)."""

    stamp_s: float
    ee_position: np.ndarray
    joint_positions: np.ndarray
    ee_linear_speed: float = 0.0
    force: np.ndarray = field(default_factory=lambda: np.zeros(3))
    torque: np.ndarray = field(default_factory=lambda: np.zeros(3))


class SpeedEstimator:
    """EE linear speed from consecutive stamped positions (robots and sims that publish no twist).

    A repeated or older stamp (a re-sent sample) keeps the previous estimate; the first sample
    gives 0.
    """

    def __init__(self) -> None:
        self._last: tuple[float, np.ndarray] | None = None
        self.speed = 0.0

    def update(self, stamp_s: float, position: np.ndarray) -> float:
        pos = np.asarray(position, np.float64)
        last = self._last
        if last is not None and stamp_s > last[0]:
            self.speed = float(np.linalg.norm(pos - last[1]) / (stamp_s - last[0]))
        if last is None or stamp_s > last[0]:
            self._last = (stamp_s, pos)
        return self.speed


@dataclass(frozen=True)
class SafetyDecision:
    action: np.ndarray
    hold: bool
    reasons: tuple[str, ...]
    """Why the command was held or modified (empty: passed unchanged)."""


def _vector(values: Sequence[float] | np.ndarray, n: int) -> np.ndarray | None:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


class SafetyMonitor:
    """Applies :class:`SafetyLimits`; see the module docstring for the rules."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self.state: RobotState | None = None
        self.estop_reason: str | None = None
        self.interventions: Counter[str] = Counter()
        self.commands = 0
        self._last_gripper = GRIPPER_OPEN
        self._last_command_time: float | None = None
        self._watch_since: float | None = None

    # ----------------------------------------------------------------- inputs
    def update_state(self, state: RobotState) -> str | None:
        """Store the latest robot state; a malformed one is refused (returns the reason)."""
        ok = (
            math.isfinite(state.stamp_s)
            and _vector(state.ee_position, 3) is not None
            and _vector(state.joint_positions, N_JOINTS) is not None
            and math.isfinite(state.ee_linear_speed)
            and _vector(state.force, 3) is not None
            and _vector(state.torque, 3) is not None
        )
        if not ok:
            self.interventions["malformed robot state"] += 1
            return "malformed robot state"
        self.state = state
        return None

    def estop(self, reason: str) -> None:
        """Latch the e-stop (only :meth:`reset_estop` clears it)."""
        if self.estop_reason is None:
            self.estop_reason = reason or "e-stop"
            self.interventions["estop latched"] += 1

    def reset_estop(self) -> bool:
        """Clear a latched e-stop; True if one was latched."""
        was = self.estop_reason is not None
        self.estop_reason = None
        return was

    # ----------------------------------------------------------------- decisions
    def hold(self, reason: str) -> SafetyDecision:
        self.interventions[reason] += 1
        return SafetyDecision(hold_action(self._last_gripper), True, (reason,))

    def tick(self, now_s: float) -> SafetyDecision | None:
        """Watchdog: a hold when no command was accepted for ``command_timeout_s`` (counted from
        the first tick when none ever was), with reason "estop" while one is latched.

        Commands keep the watchdog quiet even during an e-stop (each is answered by a hold), so
        a lockstep sim, which steps once per command, is not stepped by the watchdog too.
        """
        if self._watch_since is None:
            self._watch_since = now_s
        last = self._last_command_time
        if now_s - (self._watch_since if last is None else last) < self.limits.command_timeout_s:
            return None
        return self.hold("estop" if self.estop_reason is not None else "no fresh command")

    def filter(
        self, values: Sequence[float] | np.ndarray, stamp_s: float, now_s: float
    ) -> SafetyDecision:
        """The command to send for a candidate ``values`` stamped ``stamp_s`` at ``now_s``."""
        self.commands += 1
        lim = self.limits
        if self.estop_reason is not None:
            if math.isfinite(stamp_s) and now_s - stamp_s <= lim.max_command_age_s:
                self._last_command_time = now_s
            return self.hold("estop")
        try:
            action = validate_action(values, ACTION_DIM)
        except InvalidAction as err:
            return self.hold(f"command {err.reason}")
        if not math.isfinite(stamp_s) or now_s - stamp_s > lim.max_command_age_s:
            return self.hold("stale command")
        self._last_command_time = now_s
        state = self.state
        if state is None or now_s - state.stamp_s > lim.max_state_age_s:
            return self.hold("no fresh robot state")
        if np.linalg.norm(state.force) > lim.max_force_n:
            return self.hold("external force")
        if np.linalg.norm(state.torque) > lim.max_torque_nm:
            return self.hold("external torque")
        if state.ee_linear_speed > lim.max_ee_speed_mps:
            return self.hold("EE speed")
        reasons: list[str] = []
        joints = np.asarray(state.joint_positions, np.float64)
        near = (joints < np.asarray(lim.joint_lower) + lim.joint_margin_rad) | (
            joints > np.asarray(lim.joint_upper) - lim.joint_margin_rad
        )
        step = action[:3] * lim.translation_scale_m
        rot = action[3:6] * lim.rotation_scale_rad
        if near.any():
            step, rot = np.zeros(3), np.zeros(3)
            reasons.append("joint limit margin")
        capped = self._cap(step, lim.max_translation_per_step_m)
        if not np.array_equal(capped, step):
            reasons.append("translation step cap")
        capped_rot = self._cap(rot, lim.max_rotation_per_step_rad)
        if not np.array_equal(capped_rot, rot):
            reasons.append("rotation step cap")
        step = capped
        boxed = self._into_workspace(np.asarray(state.ee_position, np.float64), step)
        if not np.array_equal(boxed, step):
            reasons.append("workspace")
        out = np.empty(ACTION_DIM)
        out[:3] = np.clip(boxed / lim.translation_scale_m, -1.0, 1.0)
        out[3:6] = np.clip(capped_rot / lim.rotation_scale_rad, -1.0, 1.0)
        grip = float(np.clip(action[GRIPPER_INDEX], lim.gripper_min, lim.gripper_max))
        if grip != action[GRIPPER_INDEX]:
            reasons.append("gripper range")
        out[GRIPPER_INDEX] = self._last_gripper = grip
        for reason in reasons:
            self.interventions[reason] += 1
        return SafetyDecision(out, False, tuple(reasons))

    @staticmethod
    def _cap(vector: np.ndarray, limit: float) -> np.ndarray:
        norm = float(np.linalg.norm(vector))
        return vector * (limit / norm) if norm > limit else vector

    def _into_workspace(self, position: np.ndarray, step: np.ndarray) -> np.ndarray:
        """The step whose target is clipped into the box; outside the box on an axis, motion on
        that axis may only go back towards the box (never further out)."""
        lo, hi = np.asarray(self.limits.workspace_min), np.asarray(self.limits.workspace_max)
        target = position + step
        low_bound = np.minimum(lo, position)  # outside below: anything up to the current spot
        high_bound = np.maximum(hi, position)
        clipped = np.clip(target, low_bound, high_bound)
        return np.where(clipped == target, step, clipped - position)
