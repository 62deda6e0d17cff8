"""ROS-free core of the sim bridge: episode state, command validation, hold, deterministic seeds.

The node (``sim_bridge_node``) only converts messages and clocks; every decision about what the
simulated robot does with a command is made here, where it is tested without ROS.

Step modes:
- ``realtime``: the sim steps at ``control_rate_hz`` on its own clock, like the real arm; each
  step applies the newest command if it arrived within ``command_timeout_s``, else a hold.
- ``lockstep``: the sim steps exactly once per accepted command, as fast as the policy answers
  (training and CI); observations are published after every step.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pld_nodes.core.actions import (
    ACTION_DIM,
    GRIPPER_INDEX,
    GRIPPER_OPEN,
    hold_action,
    validate_action,
)

STEP_MODES = ("realtime", "lockstep")


class EpisodeState(enum.StrEnum):
    IDLE = "idle"
    RESETTING = "resetting"
    RUNNING = "running"
    ENDED = "ended"


@dataclass(frozen=True)
class SimBridgeConfig:
    """Parameters of the sim bridge (one ROS parameter per field)."""

    task: str = "lift"
    """Task id: ``lift`` or ``libero_<suite>/<task index>`` (see sim_bridge.envs)."""
    camera_names: tuple[str, ...] = ("agentview", "robot0_eye_in_hand")
    """Cameras to render and publish as /cameras/<name>/image_raw; empty = no rendering."""
    image_height: int = 128
    image_width: int = 128
    fast_render: bool = True
    """Render without shadows/reflections (about 3x faster on CPU; pixels differ)."""
    privileged_state: bool = True
    """Publish object poses on /sim/object_state (sim-only experiments)."""
    control_rate_hz: float = 20.0
    step_mode: str = "realtime"
    """``realtime`` (own clock, hold on stale commands) or ``lockstep`` (one step per command)."""
    command_timeout_s: float = 0.25
    """realtime: a command older than this is stale and the robot holds."""
    max_steps: int = 200
    """Episode length limit (then the episode ends with reason ``timeout``)."""
    seed: int = 0
    """First seed of the deterministic seed sequence (episode k uses seed + k)."""
    publish_clock: bool = False
    """Publish /clock and stamp everything with sim time (other nodes use use_sim_time).
    Lockstep always stamps with sim time (step k at k * period), with or without /clock."""
    reset_on_start: bool = True
    """Start the first episode at startup instead of waiting for /episode/reset."""

    def __post_init__(self) -> None:
        if self.step_mode not in STEP_MODES:
            raise ValueError(f"step_mode must be one of {STEP_MODES}, got {self.step_mode!r}")
        if not math.isfinite(self.control_rate_hz) or not 0.0 < self.control_rate_hz <= 1000.0:
            raise ValueError(f"control_rate_hz must be in (0, 1000], got {self.control_rate_hz!r}")
        if not math.isfinite(self.command_timeout_s) or self.command_timeout_s <= 0.0:
            raise ValueError(f"command_timeout_s must be > 0, got {self.command_timeout_s!r}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.camera_names and (self.image_height < 8 or self.image_width < 8):
            raise ValueError(
                f"image size must be at least 8x8, got {self.image_height}x{self.image_width}"
            )
        if len(set(self.camera_names)) != len(self.camera_names):
            raise ValueError(f"camera_names has duplicates: {list(self.camera_names)}")

    @property
    def step_period_s(self) -> float:
        return 1.0 / self.control_rate_hz


@dataclass(frozen=True)
class EpisodeSnapshot:
    index: int
    state: EpisodeState
    reason: str
    step: int
    seed: int
    success: bool
    instruction: str


@dataclass(frozen=True)
class StepResult:
    obs: dict[str, Any]
    reward: float
    success: bool
    ended: bool
    action: np.ndarray
    """The action actually applied (a hold if the command was missing or stale)."""
    held: bool


class SimBridge:
    """Owns one Gymnasium task env and runs episodes on it. Not thread-safe: one caller."""

    def __init__(self, env: Any, config: SimBridgeConfig) -> None:
        self.env = env
        self.config = config
        self._state = EpisodeState.IDLE
        self._index = -1
        self._seed = config.seed
        self._step = 0
        self._total_steps = 0
        self._success = False
        self._reason = ""
        self._last_gripper = GRIPPER_OPEN
        self._command: np.ndarray | None = None
        self._command_time = -math.inf
        self.obs: dict[str, Any] | None = None
        self.rejected_commands = 0

    # -- episode lifecycle -----------------------------------------------------------------
    @property
    def snapshot(self) -> EpisodeSnapshot:
        return EpisodeSnapshot(
            self._index,
            self._state,
            self._reason,
            self._step,
            self._seed,
            self._success,
            str(getattr(self.env, "instruction", "")),
        )

    @property
    def sim_time_s(self) -> float:
        """Simulated time since startup: steps taken x the control period."""
        return self._total_steps * self.config.step_period_s

    def reset(self, seed: int | None = None) -> dict[str, Any]:
        """Start a new episode; ``seed`` None or negative takes the next seed of the sequence."""
        self._state = EpisodeState.RESETTING
        self._index += 1
        self._seed = self.config.seed + self._index if seed is None or seed < 0 else int(seed)
        self.obs, _info = self.env.reset(seed=self._seed)
        # A reset takes one control period of sim time, so the new episode's first observation
        # never shares a stamp with the previous episode's last one.
        self._total_steps += 1
        self._step, self._success, self._reason = 0, False, ""
        self._last_gripper = GRIPPER_OPEN
        self._command, self._command_time = None, -math.inf
        self._state = EpisodeState.RUNNING
        return self.obs

    def stop(self) -> None:
        """End the running episode early (operator or manager request)."""
        if self._state is EpisodeState.RUNNING:
            self._state, self._reason = EpisodeState.ENDED, "stopped"

    # -- commands --------------------------------------------------------------------------
    def submit_command(self, values: Any, now_s: float) -> np.ndarray:
        """Validate and store a command; raises InvalidAction (and counts it) if refused."""
        try:
            action = validate_action(values, ACTION_DIM)
        except ValueError:
            self.rejected_commands += 1
            raise
        self._command, self._command_time = action, now_s
        return action

    def next_action(self, now_s: float) -> tuple[np.ndarray, bool]:
        """(action, held): the fresh command, or a hold if none arrived within the timeout."""
        if (
            self._command is not None
            and now_s - self._command_time <= self.config.command_timeout_s
        ):
            return self._command, False
        return hold_action(self._last_gripper), True

    # -- stepping --------------------------------------------------------------------------
    def step(self, action: np.ndarray, held: bool = False) -> StepResult:
        """Apply one validated action. Only while an episode is running."""
        if self._state is not EpisodeState.RUNNING:
            raise RuntimeError(f"cannot step: episode state is {self._state.value}")
        obs, reward, terminated, truncated, info = self.env.step(action.astype(np.float32))
        self.obs = obs
        self._step += 1
        self._total_steps += 1
        self._last_gripper = float(action[GRIPPER_INDEX])
        self._success = bool(info.get("success", False))
        if self._success or terminated:
            self._state, self._reason = EpisodeState.ENDED, "success" if self._success else "done"
        elif truncated or self._step >= self.config.max_steps:
            self._state, self._reason = EpisodeState.ENDED, "timeout"
        return StepResult(
            obs, float(reward), self._success, self._state is EpisodeState.ENDED, action, held
        )

    def check_success(self) -> bool:
        """The task's own success check on the current state."""
        check = getattr(self.env, "check_success", None)
        return bool(check()) if callable(check) else self._success
