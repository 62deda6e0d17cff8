"""Gymnasium view of a simulated Franka Panda task with the stack's action/observation convention.

The same wrapper serves robosuite's Lift (fast CI default) and the 130 LIBERO tasks so that the
residual-RL code and the ROS bridge never see simulator-specific APIs.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from sim_bridge.envs._sim import (
    configure_fast_render,
    free_render_context,
    quiet_stdout,
    render_camera,
    seeded_global_numpy,
)
from sim_bridge.envs.config import EnvConfig
from sim_bridge.envs.conventions import (
    ACTION_DIM,
    ACTION_HIGH,
    ACTION_LOW,
    GRIPPER_OPEN,
    OBJECT_STATE_STRIDE,
    PROPRIO_DIM,
    validate_action,
)
from sim_bridge.envs.tasks import SimHandle, TaskSpec, build_sim, get_task_spec

_LOG = logging.getLogger(__name__)
_SEED_BOUND = 2**31 - 1
_VALID_OPTIONS = frozenset({"init_state_id"})


class PandaTaskEnv(gym.Env[dict[str, Any], np.ndarray]):
    """A Panda task driven by normalised delta end-effector actions (see ``conventions``).

    Observation dict:
        ``proprio`` float32 (16,): EE position (3, m), EE quaternion (4, xyzw), joint positions
        (7, rad), finger positions (2, m); slices in ``conventions.PROPRIO_LAYOUT``.
        ``object_state`` float32 (7 * len(object_names),), only if ``privileged_state``: per
        object in ``env.object_names`` order, position (3) then quaternion (4, xyzw).
        ``images`` dict camera -> uint8 (H, W, 3), row 0 at the top, only if rendering.

    Reward is 1.0 exactly on steps where the task's own success check passes, which also
    terminates the episode; ``truncated`` is set after ``max_steps`` steps.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, config: EnvConfig | None = None, render_mode: str | None = None) -> None:
        self.config = config if config is not None else EnvConfig()
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if render_mode == "rgb_array" and not self.config.render:
            raise ValueError("render_mode='rgb_array' needs EnvConfig(render=True)")
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.config.control_freq}
        self.spec_info: TaskSpec = get_task_spec(self.config.task)
        self.max_steps = self.config.max_steps or self.spec_info.default_max_steps
        self.render_camera = self.config.render_camera or self.spec_info.default_render_camera

        # Model construction draws from np.random too (Lift randomises the cube size).
        with seeded_global_numpy(self.config.seed or 0):
            self._handle: SimHandle | None = build_sim(self.spec_info, self.config)
        try:
            self._check_cameras()
            if self.config.render and self.config.fast_render:
                configure_fast_render(self._handle.env.sim)
        except Exception:
            self.close()
            raise
        robot = self._handle.env.robots[0]
        self._eef_site = int(robot.eef_site_id)
        self._eef_body = int(self._handle.env.sim.model.body_name2id(robot.robot_model.eef_name))
        self._joint_idx = np.asarray(robot._ref_joint_pos_indexes, dtype=np.int64)
        self._finger_idx = np.asarray(robot._ref_gripper_joint_pos_indexes, dtype=np.int64)

        self.instruction: str = self._handle.instruction
        self.object_names: tuple[str, ...] = self._handle.object_names
        self.action_space = spaces.Box(ACTION_LOW, ACTION_HIGH, (ACTION_DIM,), np.float32)
        self.observation_space = self._make_observation_space()
        if self.config.seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(self.config.seed)
        self._steps = 0
        self._needs_reset = True
        self.init_state_id: int | None = None

    # ------------------------------------------------------------------ properties
    @property
    def sim(self) -> Any:
        """robosuite ``MjSim`` (escape hatch for tests and privileged tooling)."""
        return self._live().env.sim

    @property
    def robosuite_env(self) -> Any:
        """The wrapped robosuite environment."""
        return self._live().env

    @property
    def num_init_states(self) -> int:
        """Number of official LIBERO init states (0 for tasks that sample their own)."""
        states = self._live().init_states
        return 0 if states is None else len(states)

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode; LIBERO tasks load an official init state (seeded or by option)."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - _VALID_OPTIONS
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; valid: {sorted(_VALID_OPTIONS)}"
            )
        handle = self._live()
        episode_seed = int(self.np_random.integers(0, _SEED_BOUND))
        # robosuite keeps the gripper's ramped command across soft resets; a fresh model starts
        # at zero, so restore that or identical seeds would give different trajectories.
        for robot in handle.env.robots:
            robot.gripper.current_action = np.zeros(robot.gripper.dof)
        with seeded_global_numpy(episode_seed), quiet_stdout():
            handle.env.reset()
        self.init_state_id = None
        if handle.init_states is not None:
            self.init_state_id = self._pick_init_state(options.get("init_state_id"))
            self._load_state(handle.init_states[self.init_state_id])
        elif options.get("init_state_id") is not None:
            raise ValueError(f"task {self.spec_info.name!r} has no official init states")
        self._steps = 0
        self._needs_reset = False
        return self._observation(), self._info(self._success())

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Apply one normalised action for ``1 / control_freq`` s; raises ValueError if invalid."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        clipped = validate_action(action)
        self._live().env.step(clipped)
        self._steps += 1
        success = self._success()
        truncated = self._steps >= self.max_steps
        return self._observation(), float(success), success, truncated, self._info(success)

    def render(self) -> np.ndarray:  # type: ignore[override]
        """RGB frame (uint8, row 0 on top) from ``render_camera`` at ``render_size``."""
        if not self.config.render:
            raise RuntimeError("rendering is disabled (EnvConfig.render=False)")
        height, width = self.config.render_size
        return render_camera(self.sim, self.render_camera, height, width)

    def close(self) -> None:
        """Release the GL context and the simulator; safe to call twice."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        free_render_context(handle.env.sim)
        handle.env.close()

    # ------------------------------------------------------------------ internals
    def _live(self) -> SimHandle:
        if self._handle is None:
            raise RuntimeError("environment is closed")
        return self._handle

    def _check_cameras(self) -> None:
        available = set(self._live().env.sim.model.camera_names)
        wanted = list(self.config.image_cameras)
        if self.config.render:
            wanted.append(self.config.render_camera or self.spec_info.default_render_camera)
        missing = [c for c in wanted if c not in available]
        if missing:
            raise ValueError(
                f"cameras {missing} do not exist in task {self.spec_info.name!r}; "
                f"available: {sorted(available)}"
            )

    def _make_observation_space(self) -> spaces.Dict:
        entries: dict[str, spaces.Space[Any]] = {
            "proprio": spaces.Box(-np.inf, np.inf, (PROPRIO_DIM,), np.float32)
        }
        if self.config.privileged_state:
            size = OBJECT_STATE_STRIDE * len(self.object_names)
            entries["object_state"] = spaces.Box(-np.inf, np.inf, (size,), np.float32)
        if self.config.image_cameras:
            height, width = self.config.image_size
            entries["images"] = spaces.Dict(
                {
                    cam: spaces.Box(0, 255, (height, width, 3), np.uint8)
                    for cam in self.config.image_cameras
                }
            )
        return spaces.Dict(entries)

    def _pick_init_state(self, requested: Any) -> int:
        count = self.num_init_states
        if requested is None:
            return int(self.np_random.integers(0, count))
        if isinstance(requested, bool) or not isinstance(requested, int | np.integer):
            raise ValueError(f"init_state_id must be an int, got {requested!r}")
        if not 0 <= int(requested) < count:
            raise ValueError(f"init_state_id must be in [0, {count}), got {requested!r}")
        return int(requested)

    def _load_state(self, state: np.ndarray) -> None:
        """Load a flattened MuJoCo state and let objects settle, as LIBERO's evaluation does."""
        env = self._live().env
        env.sim.set_state_from_flattened(state)
        env.sim.forward()
        env._post_process()
        env._update_observables(force=True)
        hold = np.zeros(ACTION_DIM)
        hold[-1] = GRIPPER_OPEN
        for _ in range(self.config.settle_steps):
            env.step(hold)

    def _success(self) -> bool:
        return bool(self._live().env._check_success())

    def _observation(self) -> dict[str, Any]:
        handle = self._live()
        data = handle.env.sim.data
        xquat = data.body_xquat[self._eef_body]
        proprio = np.concatenate(
            [
                data.site_xpos[self._eef_site],
                xquat[[1, 2, 3, 0]],  # MuJoCo wxyz -> xyzw
                data.qpos[self._joint_idx],
                data.qpos[self._finger_idx],
            ]
        ).astype(np.float32)
        obs: dict[str, Any] = {"proprio": proprio}
        if self.config.privileged_state:
            ids = list(handle.object_body_ids)
            poses = np.concatenate([data.body_xpos[ids], data.body_xquat[ids][:, [1, 2, 3, 0]]], 1)
            obs["object_state"] = poses.reshape(-1).astype(np.float32)
        if self.config.image_cameras:
            height, width = self.config.image_size
            obs["images"] = {
                cam: render_camera(handle.env.sim, cam, height, width)
                for cam in self.config.image_cameras
            }
        return obs

    def ee_wrench(self) -> np.ndarray:
        """Force (N) and torque (N·m) at the wrist sensor, as a Franka's external wrench.

        robosuite's raw sensor reading: unlike libfranka's ``O_F_ext_hat_K`` it is not
        gravity-compensated (the hand's own weight reads ~4 N) and sim contacts are stiff
        (measured in Lift: a base policy pressing on the table reads 58 N p50, 308 N p99).
        """
        robot = self._live().env.robots[0]
        return np.concatenate([robot.ee_force, robot.ee_torque]).astype(np.float64)

    def _info(self, success: bool) -> dict[str, Any]:
        return {
            "success": success,
            "instruction": self.instruction,
            "task": self.spec_info.name,
            "init_state_id": self.init_state_id,
            "steps": self._steps,
        }


def make_env(task: str = "lift", *, render_mode: str | None = None, **config: Any) -> PandaTaskEnv:
    """Build a :class:`PandaTaskEnv` for a registered task; ``config`` are ``EnvConfig`` fields."""
    if "camera_names" in config and not isinstance(config["camera_names"], str):
        config["camera_names"] = tuple(config["camera_names"])
    for key in ("image_size", "render_size"):
        if key in config and isinstance(config[key], list):
            config[key] = tuple(config[key])
    return PandaTaskEnv(EnvConfig(task=task, **config), render_mode=render_mode)
