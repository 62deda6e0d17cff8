"""Scripted pick-and-place experts that read privileged object poses.

They generate demonstrations and base-policy stand-ins for residual RL tests without a VLA.
Each expert is a phase state machine (approach, descend, grasp, lift, move, lower, release,
retreat) driving a proportional controller in the normalised action convention, with optional
Gaussian action noise and per-episode target perturbations from its own seeded RNG.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from sim_bridge.envs.conventions import (
    ACTION_DIM,
    GRIPPER_CLOSE,
    GRIPPER_OPEN,
    MAX_DELTA_ROT_RAD,
    OBJECT_STATE_STRIDE,
    PROPRIO_LAYOUT,
)

_LOG = logging.getLogger(__name__)


class Phase(Enum):
    """Stages of a top-down pick and place."""

    APPROACH = "approach"
    DESCEND = "descend"
    GRASP = "grasp"
    LIFT = "lift"
    MOVE = "move"
    LOWER = "lower"
    RELEASE = "release"
    RETREAT = "retreat"


@dataclass(frozen=True)
class PickPlaceParams:
    """Geometry of one task, in metres in the world frame.

    Attributes:
        object_name: body to pick (an entry of ``env.object_names``).
        target_name: body to place on/in, or ``None`` to only lift (robosuite Lift).
        grasp_offset: grasp point minus the object's body origin.
        place_offset: release point of the *grasp point* minus the target's body origin.
        hover: height above the grasp point where the descent starts.
        carry_z: absolute height for lifting and transporting.
        yaw: gripper yaw (rad) about world z; 0 closes the fingers along world y.
        grasp_steps: steps to hold still while the fingers close.
        release_steps: steps to hold still while the fingers open.
    """

    object_name: str
    target_name: str | None
    grasp_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    place_offset: tuple[float, float, float] = (0.0, 0.0, 0.1)
    hover: float = 0.08
    carry_z: float = 0.25
    yaw: float = 0.0
    grasp_steps: int = 8
    release_steps: int = 8


# Per-task geometry, measured from the objects' collision geoms in their official LIBERO init
# states (body origins: can/box centres, bowl centre with the rim wall 4.7 cm away).
EXPERT_PARAMS: dict[str, PickPlaceParams] = {
    "lift": PickPlaceParams(
        object_name="cube", target_name=None, grasp_offset=(0.0, 0.0, -0.005), carry_z=0.95
    ),
    "libero_object/0": PickPlaceParams(  # alphabet soup (upright can) -> basket
        object_name="alphabet_soup_1",
        target_name="basket_1",
        grasp_offset=(0.0, 0.0, 0.005),
        place_offset=(0.0, 0.0, 0.16),
        carry_z=0.30,
    ),
    "libero_object/1": PickPlaceParams(  # cream cheese (flat box) -> basket
        object_name="cream_cheese_1",
        target_name="basket_1",
        # Off-centre along the box's long (x) side: centred, the hand hits the tomato sauce
        # bottle standing 5 cm in +x in some init states.
        grasp_offset=(-0.025, 0.0, 0.0),
        place_offset=(0.0, 0.0, 0.12),
        carry_z=0.30,
    ),
    "libero_object/6": PickPlaceParams(  # butter (flat box) -> basket
        object_name="butter_1",
        target_name="basket_1",
        grasp_offset=(0.0, 0.0, 0.0),
        place_offset=(0.0, 0.0, 0.12),
        carry_z=0.30,
    ),
}
_BOWL_RIM_GRASP = (0.0, -0.047, 0.03)  # centre of the near rim wall (radius 4.7 cm)
for _task in ("libero_spatial/0", "libero_spatial/2"):
    EXPERT_PARAMS[_task] = PickPlaceParams(  # black bowl -> plate
        object_name="akita_black_bowl_1",
        target_name="plate_1",
        grasp_offset=_BOWL_RIM_GRASP,
        place_offset=(0.0, -0.047, 0.07),
        carry_z=1.08,
        grasp_steps=16,  # the 2 mm rim is only pinched once the fingers are fully closed
    )


def _quat_xyzw_to_mat(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _mat_to_axis_angle(rot: np.ndarray) -> np.ndarray:
    cos = np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cos))
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-6:  # angle ~ pi: axis from the diagonal
        axis = np.sqrt(np.clip((np.diag(rot) + 1.0) / 2.0, 0.0, None))
        norm = np.linalg.norm(axis)
    return axis / norm * angle


def _down_orientation(yaw: float) -> np.ndarray:
    """Gripper pointing down (180 deg about x), then yawed about world z."""
    c, s = np.cos(yaw), np.sin(yaw)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return rz @ np.diag([1.0, -1.0, -1.0])


class PickPlaceExpert:
    """Phase state machine producing normalised 7-D actions for one pick-and-place task."""

    POS_GAIN = 10.0  # normalised action per metre of error: saturates beyond 10 cm
    ROT_GAIN = 1.0  # fraction of the orientation error corrected per step
    REACHED_M = 0.012
    PHASE_TIMEOUT = 60

    def __init__(
        self,
        params: PickPlaceParams,
        object_names: tuple[str, ...] | None = None,
        *,
        noise_std: float = 0.0,
        perturb_m: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not np.isfinite(noise_std) or noise_std < 0:
            raise ValueError(f"noise_std must be a finite non-negative float, got {noise_std!r}")
        if not np.isfinite(perturb_m) or perturb_m < 0:
            raise ValueError(f"perturb_m must be a finite non-negative float, got {perturb_m!r}")
        self.params = params
        self.noise_std = float(noise_std)
        self.perturb_m = float(perturb_m)
        self.rng = np.random.default_rng(seed)
        self._object_names = object_names
        self._target_rot = _down_orientation(params.yaw)
        self.phase = Phase.APPROACH
        self._phase_steps = 0
        self._grasp_jitter = np.zeros(3)
        self._place_jitter = np.zeros(3)

    # ------------------------------------------------------------------ public API
    def reset(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None:
        """Start a new episode: reset the phase and draw this episode's perturbations."""
        del info
        if "object_state" not in obs:
            raise ValueError("scripted experts need EnvConfig(privileged_state=True)")
        self.phase = Phase.APPROACH
        self._phase_steps = 0
        jitter = self.rng.normal(0.0, self.perturb_m, size=(2, 3)) if self.perturb_m else None
        self._grasp_jitter = np.zeros(3) if jitter is None else np.r_[jitter[0, :2], 0.0]
        self._place_jitter = np.zeros(3) if jitter is None else np.r_[jitter[1, :2], 0.0]

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Normalised action (7,) float32 for the current observation."""
        proprio = np.asarray(obs["proprio"], dtype=np.float64)
        eef = proprio[PROPRIO_LAYOUT["eef_pos"]]
        eef_rot = _quat_xyzw_to_mat(proprio[PROPRIO_LAYOUT["eef_quat_xyzw"]])
        obj_pos = self._body_pos(obs, self.params.object_name)
        grasp = obj_pos + np.asarray(self.params.grasp_offset) + self._grasp_jitter
        goal, gripper = self._update_phase(eef, grasp, obs)

        action = np.zeros(ACTION_DIM)
        action[:3] = self.POS_GAIN * (goal - eef)
        rot_err = _mat_to_axis_angle(self._target_rot @ eef_rot.T)
        action[3:6] = self.ROT_GAIN * rot_err / MAX_DELTA_ROT_RAD
        action[6] = gripper
        if self.noise_std:
            action[:6] += self.rng.normal(0.0, self.noise_std, size=6)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------ internals
    def _body_pos(self, obs: Mapping[str, Any], name: str) -> np.ndarray:
        names = self._object_names
        if names is None:
            raise ValueError("expert was built without the env's object_names")
        idx = names.index(name) * OBJECT_STATE_STRIDE
        return np.asarray(obs["object_state"][idx : idx + 3], dtype=np.float64)

    def _place_point(self, obs: Mapping[str, Any]) -> np.ndarray:
        assert self.params.target_name is not None
        target = self._body_pos(obs, self.params.target_name)
        return target + np.asarray(self.params.place_offset) + self._place_jitter

    def _goto(self, phase: Phase) -> None:
        _LOG.debug("expert phase %s -> %s", self.phase.value, phase.value)
        self.phase = phase
        self._phase_steps = 0

    def _update_phase(
        self, eef: np.ndarray, grasp: np.ndarray, obs: Mapping[str, Any]
    ) -> tuple[np.ndarray, float]:
        p = self.params
        self._phase_steps += 1
        above = grasp + np.array([0.0, 0.0, p.hover])
        if self.phase is Phase.APPROACH:
            xy_err = np.linalg.norm((above - eef)[:2])
            if xy_err < self.REACHED_M and abs(above[2] - eef[2]) < 0.03:
                self._goto(Phase.DESCEND)
            return above, GRIPPER_OPEN
        if self.phase is Phase.DESCEND:
            if np.linalg.norm(grasp - eef) < self.REACHED_M or self._phase_steps > 40:
                self._goto(Phase.GRASP)
            return grasp, GRIPPER_OPEN
        if self.phase is Phase.GRASP:
            if self._phase_steps >= p.grasp_steps:
                self._goto(Phase.LIFT)
            return grasp, GRIPPER_CLOSE
        holding = np.linalg.norm(grasp - eef) < 0.05
        if self.phase in (Phase.LIFT, Phase.MOVE, Phase.LOWER) and not holding:
            _LOG.debug("expert lost the object in %s; regrasping", self.phase.value)
            self._goto(Phase.APPROACH)
            return above, GRIPPER_OPEN
        if self.phase is Phase.LIFT:
            goal = np.array([eef[0], eef[1], p.carry_z])
            if p.target_name is None:
                return goal, GRIPPER_CLOSE
            if eef[2] > p.carry_z - 0.03:
                self._goto(Phase.MOVE)
            return goal, GRIPPER_CLOSE
        place = self._place_point(obs)
        carry = np.array([place[0], place[1], max(p.carry_z, place[2])])
        # The controller tracks the grasp point; offset the hand so the object lands on target.
        hand_from_grasp = eef - grasp
        if self.phase is Phase.MOVE:
            goal = carry + hand_from_grasp * np.array([1.0, 1.0, 0.0])
            if np.linalg.norm((goal - eef)[:2]) < self.REACHED_M:
                self._goto(Phase.LOWER)
            return goal, GRIPPER_CLOSE
        if self.phase is Phase.LOWER:
            goal = place + hand_from_grasp
            if np.linalg.norm(goal - eef) < self.REACHED_M or self._phase_steps > 40:
                self._goto(Phase.RELEASE)
            return goal, GRIPPER_CLOSE
        if self.phase is Phase.RELEASE:
            if self._phase_steps >= p.release_steps:
                self._goto(Phase.RETREAT)
            return eef.copy(), GRIPPER_OPEN
        return np.array([eef[0], eef[1], p.carry_z]), GRIPPER_OPEN


def expert_tasks() -> list[str]:
    """Tasks that have a scripted expert."""
    return list(EXPERT_PARAMS)


def make_expert(
    task: str,
    *,
    noise_std: float = 0.0,
    perturb_m: float = 0.0,
    seed: int | None = None,
    object_names: tuple[str, ...] | None = None,
) -> PickPlaceExpert:
    """Build the scripted expert for ``task``.

    ``object_names`` is ``env.object_names`` (the layout of ``obs["object_state"]``); it defaults
    to the layout the registry's env produces for Lift, and must be passed for LIBERO tasks.
    """
    try:
        params = EXPERT_PARAMS[task]
    except KeyError:
        raise ValueError(f"no scripted expert for task {task!r}; have {expert_tasks()}") from None
    if object_names is None and params.target_name is None:
        object_names = (params.object_name,)
    return PickPlaceExpert(
        params, object_names, noise_std=noise_std, perturb_m=perturb_m, seed=seed
    )
