"""Intervention arbiter: who acts at each control step (PLD's hybrid rollout), without ROS.

Modes, fixed for a whole episode (a mode change requested mid-episode waits for the next one;
only a hold is immediate):

- ``base``: the base policy alone (a_δ ignored, never waited for);
- ``residual``: base + ξ·residual from step 0;
- ``hybrid``: per episode ``T_base ~ U{0, ..., floor(α·T_max)}``; base alone for steps
  ``< T_base``, base + ξ·residual from ``T_base`` on (the takeover is unconditional);
- ``hold``: no motion.

A step whose required inputs are missing, stale or malformed gets a hold (zero motion, gripper
as last commanded) with the reason — never a guess. The decision carries the phase that the
recorder stores and the RL replay uses to drop the base-only prefix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pld_nodes.core.actions import (
    ACTION_DIM,
    GRIPPER_INDEX,
    GRIPPER_OPEN,
    InvalidAction,
    hold_action,
    validate_action,
)
from pld_nodes.core.config import ConfigError, require_finite
from pld_nodes.core.residual.replay import PHASE_BASE, PHASE_RESIDUAL

PHASE_HOLD = 2
MODES = ("base", "residual", "hybrid", "hold")


@dataclass(frozen=True)
class ArbiterConfig:
    mode: str = "hybrid"
    """Mode of the first episode; later episodes use the mode requested for them."""
    alpha: float = 0.6
    """Hybrid: T_base ~ U{0, ..., floor(alpha * t_max)} (paper: 0.6 best of 0..0.8)."""
    t_max: int = 200
    """Episode length limit in steps (the task's max_steps)."""
    xi: float = 0.5
    """Residual scale: executed = clip(a_b + xi * a_delta, -1, 1)."""
    seed: int = 0
    """Seeds the T_base stream (episode k draws from seed + k: reproducible, order-free)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        require_finite("alpha", self.alpha, low=0.0, high=1.0)
        require_finite("xi", self.xi, low=0.0, high=2.0)
        if self.t_max < 1:
            raise ConfigError(f"t_max must be >= 1, got {self.t_max}")


def sample_t_base(alpha: float, t_max: int, rng: np.random.Generator) -> int:
    """Uniform integer in [0, floor(alpha * t_max)] (inclusive)."""
    return int(rng.integers(0, math.floor(alpha * t_max) + 1))


@dataclass(frozen=True)
class EpisodePlan:
    episode: int
    mode: str
    t_base: int
    """First step at which the residual acts; t_max + 1 for base/hold (never)."""


@dataclass(frozen=True)
class Decision:
    action: np.ndarray
    """What to send on: executed action, or a hold."""
    phase: int
    """PHASE_BASE, PHASE_RESIDUAL or PHASE_HOLD."""
    reason: str
    """Empty unless this is a hold: why."""
    base: np.ndarray | None
    residual: np.ndarray | None

    @property
    def is_hold(self) -> bool:
        return self.phase == PHASE_HOLD


class Arbiter:
    def __init__(self, config: ArbiterConfig) -> None:
        self.config = config
        self._next_mode = config.mode
        self.plan: EpisodePlan | None = None
        self._last_gripper = GRIPPER_OPEN
        self.holds: dict[str, int] = {}

    def request_mode(self, mode: str) -> None:
        """Mode for the next episode (the running one keeps its mode)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid: {MODES}")
        self._next_mode = mode

    @property
    def next_mode(self) -> str:
        return self._next_mode

    def start_episode(self, episode: int) -> EpisodePlan:
        c = self.config
        mode = self._next_mode
        rng = np.random.default_rng([c.seed, episode])
        if mode == "hybrid":
            t_base = sample_t_base(c.alpha, c.t_max, rng)
        elif mode == "residual":
            t_base = 0
        else:
            t_base = c.t_max + 1
        self.plan = EpisodePlan(episode, mode, t_base)
        self._last_gripper = GRIPPER_OPEN
        return self.plan

    def end_episode(self) -> None:
        self.plan = None

    def phase_at(self, step: int) -> int:
        plan = self.plan
        if plan is None or plan.mode == "hold":
            return PHASE_HOLD
        return PHASE_RESIDUAL if step >= plan.t_base else PHASE_BASE

    def decide(
        self, step: int, base: object | None, residual: object | None, xi: float | None = None
    ) -> Decision:
        """The command for ``step`` of the running episode from the inputs for that step
        (None = missing or stale, as judged by the caller)."""
        phase = self.phase_at(step)
        if self.plan is None:
            return self._hold("no episode running")
        if phase == PHASE_HOLD:
            return self._hold("mode hold")
        try:
            a_b = None if base is None else validate_action(base, ACTION_DIM)
        except InvalidAction as exc:
            return self._hold(f"base action {exc.reason}")
        if a_b is None:
            return self._hold("no fresh base action")
        if phase == PHASE_BASE:
            return self._send(a_b, PHASE_BASE, a_b, None)
        try:
            a_d = None if residual is None else validate_action(residual, ACTION_DIM)
        except InvalidAction as exc:
            return self._hold(f"residual action {exc.reason}")
        if a_d is None:
            return self._hold("no fresh residual action")
        scale = self.config.xi if xi is None else xi
        executed = np.clip(a_b + scale * a_d, -1.0, 1.0)
        return self._send(executed, PHASE_RESIDUAL, a_b, a_d)

    def _send(self, action, phase, base, residual) -> Decision:
        self._last_gripper = float(action[GRIPPER_INDEX])
        return Decision(action, phase, "", base, residual)

    def _hold(self, reason: str) -> Decision:
        self.holds[reason] = self.holds.get(reason, 0) + 1
        return Decision(hold_action(self._last_gripper), PHASE_HOLD, reason, None, None)
