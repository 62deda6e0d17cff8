"""Robot observations assembled from separately published streams that share a capture stamp.

The sim bridge (and, per step, the robot driver) publishes joint states, EE pose, gripper,
object state and camera frames with the same capture stamp. Topics are not ordered relative to
each other, so a consumer that needs all parts of one step collects them by stamp and releases
the step only when it is complete. Old incomplete stamps are dropped, never mixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

ARM_JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINT_NAMES = ("panda_finger_joint1", "panda_finger_joint2")
PROPRIO_PARTS = ("eef_pos", "eef_quat_xyzw", "joint_pos", "gripper_qpos")
PROPRIO_SIZES = {"eef_pos": 3, "eef_quat_xyzw": 4, "joint_pos": 7, "gripper_qpos": 2}
PROPRIO_DIM = sum(PROPRIO_SIZES.values())


def _layout() -> dict[str, slice]:
    out, start = {}, 0
    for name in PROPRIO_PARTS:
        out[name] = slice(start, start + PROPRIO_SIZES[name])
        start += PROPRIO_SIZES[name]
    return out


PROPRIO_LAYOUT = MappingProxyType(_layout())
"""Slices of the flat proprio vector: eef_pos 0:3 (m), eef_quat_xyzw 3:7, joint_pos 7:14 (rad),
gripper_qpos 14:16 (m, finger joints)."""


def proprio_vector(
    eef_pos: Iterable[float],
    eef_quat_xyzw: Iterable[float],
    joint_pos: Iterable[float],
    gripper_qpos: Iterable[float],
) -> np.ndarray:
    """The flat proprio layout every policy sees: EE pos (3), EE quat xyzw (4), joints (7),
    finger joints (2) — the same layout as ``sim_bridge.envs`` observations."""
    parts = {
        "eef_pos": eef_pos,
        "eef_quat_xyzw": eef_quat_xyzw,
        "joint_pos": joint_pos,
        "gripper_qpos": gripper_qpos,
    }
    out = []
    for name in PROPRIO_PARTS:
        arr = np.asarray(list(parts[name]), dtype=np.float64)
        if arr.shape != (PROPRIO_SIZES[name],):
            raise ValueError(f"{name} must have {PROPRIO_SIZES[name]} values, got {arr.shape}")
        out.append(arr)
    return np.concatenate(out)


OBJECT_POSE_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw")


def object_state_names(objects: Iterable[str]) -> tuple[str, ...]:
    """Names of the privileged object-state entries: ``<object>/<field>``, 7 per object."""
    return tuple(f"{obj}/{f}" for obj in objects for f in OBJECT_POSE_FIELDS)


def objects_of(state_names: Iterable[str]) -> tuple[str, ...]:
    """Inverse of :func:`object_state_names`: the objects, in order."""
    seen: dict[str, None] = {}
    for name in state_names:
        seen.setdefault(name.rsplit("/", 1)[0], None)
    return tuple(seen)


@dataclass(frozen=True)
class Observation:
    """One complete step of robot data, all captured at ``stamp_s``."""

    stamp_s: float
    proprio: np.ndarray
    object_state: np.ndarray | None = None
    object_state_names: tuple[str, ...] = ()
    images: dict[str, np.ndarray] = field(default_factory=dict)
    stamp_ns: int | None = None
    """The exact stamp (ROS time in ns) when it came from a message: outputs answering this
    observation must carry it unchanged — a float round trip of a wall-clock stamp is off by
    up to ~200 ns, and consumers pair streams by exact stamp."""

    @property
    def key_ns(self) -> int:
        return self.stamp_ns if self.stamp_ns is not None else round(self.stamp_s * 1e9)


class StampAssembler:
    """Collects named parts per stamp; :meth:`add` returns the parts once all have arrived."""

    def __init__(self, required: Iterable[str], max_pending: int = 8) -> None:
        self.required = frozenset(required)
        if not self.required:
            raise ValueError("StampAssembler needs at least one required part")
        self._pending: dict[int, dict[str, Any]] = {}
        self._max_pending = max_pending
        self._released_up_to = -1
        self.dropped_stamps = 0

    def add(self, stamp_ns: int, part: str, value: Any) -> dict[str, Any] | None:
        if part not in self.required:
            raise KeyError(f"unknown part {part!r}; expected one of {sorted(self.required)}")
        if stamp_ns <= self._released_up_to:
            return None  # a late duplicate of a step already released
        parts = self._pending.setdefault(stamp_ns, {})
        parts[part] = value
        if parts.keys() == self.required:
            del self._pending[stamp_ns]
            self._released_up_to = stamp_ns
            self._drop_older_than(stamp_ns)
            return parts
        while len(self._pending) > self._max_pending:
            del self._pending[min(self._pending)]
            self.dropped_stamps += 1
        return None

    def _drop_older_than(self, stamp_ns: int) -> None:
        for old in [s for s in self._pending if s < stamp_ns]:
            del self._pending[old]
            self.dropped_stamps += 1
