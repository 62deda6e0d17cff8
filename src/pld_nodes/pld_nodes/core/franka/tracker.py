"""The 1 kHz joint reference: moves the commanded joint position towards a goal with bounded
velocity, acceleration and jerk, so the Franka never sees a discontinuity (its reflexes fire on
those: "joint_motion_generator_velocity_discontinuity" and friends).

A critically damped second-order pull towards the goal, then jerk, acceleration and velocity
clipped in that order. ``dt`` must be the robot's own period of the cycle (``readOnce``'s
duration), not a nominal 1 ms: after missed cycles the robot extrapolates the reference, and a
command that advanced only 1 ms would then be a velocity jump.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pld_nodes.core.config import require_finite


@dataclass(frozen=True)
class TrackerLimits:
    max_velocity: tuple[float, ...] = (0.5,) * 7
    """rad/s, per joint; well inside the FR3's 2.62-5.26 rad/s."""
    max_acceleration: float = 3.0
    """rad/s², every joint (FR3: 10)."""
    max_jerk: float = 1000.0
    """rad/s³, every joint (FR3: 5000)."""
    bandwidth: float = 40.0
    """rad/s: natural frequency of the pull towards the goal."""

    def __post_init__(self) -> None:
        if len(self.max_velocity) != 7 or not all(v > 0 for v in self.max_velocity):
            raise ValueError(f"max_velocity must be 7 positive numbers, got {self.max_velocity}")
        for name in ("max_acceleration", "max_jerk", "bandwidth"):
            require_finite(name, getattr(self, name), low=0.0, low_inclusive=False)


class JointTracker:
    def __init__(self, q: np.ndarray, limits: TrackerLimits = TrackerLimits()) -> None:
        self.limits = limits
        self._v_max = np.asarray(limits.max_velocity, np.float64)
        self.reset(q)

    def reset(self, q: np.ndarray) -> None:
        """Start from rest at ``q`` (the robot's current commanded position ``q_d``)."""
        self.q = np.array(q, np.float64)
        self.v = np.zeros_like(self.q)
        self.a = np.zeros_like(self.q)

    def step(self, goal: np.ndarray, dt: float) -> np.ndarray:
        """Advance by ``dt`` seconds towards ``goal``; returns the new joint command."""
        lim = self.limits
        wn = lim.bandwidth
        a_des = wn * wn * (np.asarray(goal, np.float64) - self.q) - 2.0 * wn * self.v
        da = lim.max_jerk * dt
        a = np.clip(a_des, self.a - da, self.a + da)
        a = np.clip(a, -lim.max_acceleration, lim.max_acceleration)
        v = np.clip(self.v + a * dt, -self._v_max, self._v_max)
        self.a = (v - self.v) / dt if dt > 0 else np.zeros_like(v)
        self.v = v
        self.q = self.q + v * dt
        return self.q

    def stop_goal(self) -> np.ndarray:
        """A goal that brings the joints to rest soon, without overshooting the stopping
        distance (v²/2a per joint, in the direction of motion): "hold the current pose"."""
        return self.q + self.v * np.abs(self.v) / (2.0 * self.limits.max_acceleration)
