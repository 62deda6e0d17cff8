"""Subscribe to the robot's topics and hand over complete, same-stamp observations.

Used by every consumer of robot state (policies, drivers of scripted episodes, recorder) so that
they all read /robot/* and /cameras/* the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, JointState

from pld_interfaces.msg import StateVector
from pld_nodes.core.observation import (
    ARM_JOINT_NAMES,
    FINGER_JOINT_NAMES,
    Observation,
    StampAssembler,
    proprio_vector,
)
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import image_from_msg, nanoseconds_from_stamp


def _stamp_ns(msg: object) -> int:
    return nanoseconds_from_stamp(msg.header.stamp)  # type: ignore[attr-defined]


def joint_positions(msg: JointState, names: Sequence[str]) -> list[float]:
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"joint_states lacks joints {missing} (has {list(msg.name)})")
    return [msg.position[index[n]] for n in names]


class RobotObserver:
    """Calls ``on_observation`` with an :class:`Observation` for every complete step."""

    def __init__(
        self,
        node: Node,
        on_observation: Callable[[Observation], None],
        camera_names: Sequence[str] = (),
        privileged_state: bool = False,
        qos_profile: QoSProfile = qos.SENSOR,
    ) -> None:
        """``qos_profile``: SENSOR for control (newest wins); a recorder, which must see every
        step, passes a deeper best-effort queue (``qos.SENSOR_RECORDING``)."""
        self._node = node
        self._on_observation = on_observation
        parts = ["joints", "ee", *(f"camera:{c}" for c in camera_names)]
        if privileged_state:
            parts.append("objects")
        self._assembler = StampAssembler(parts)
        node.create_subscription(
            JointState, "/robot/joint_states", lambda m: self._add(m, "joints", m), qos_profile
        )
        node.create_subscription(
            PoseStamped, "/robot/ee_pose", lambda m: self._add(m, "ee", m), qos_profile
        )
        if privileged_state:
            node.create_subscription(
                StateVector, "/sim/object_state", lambda m: self._add(m, "objects", m), qos_profile
            )
        for cam in camera_names:
            node.create_subscription(
                Image,
                f"/cameras/{cam}/image_raw",
                lambda m, c=cam: self._add(m, f"camera:{c}", m),
                qos_profile,
            )

    def _add(self, msg: object, part: str, value: object) -> None:
        parts = self._assembler.add(_stamp_ns(msg), part, value)
        if parts is None:
            return
        try:
            obs = self._build(parts)
        except ValueError as exc:
            self._node.get_logger().error(
                f"dropping malformed observation: {exc}", throttle_duration_sec=1.0
            )
            return
        self._on_observation(obs)

    @staticmethod
    def _build(parts: dict[str, object]) -> Observation:
        joints: JointState = parts["joints"]  # type: ignore[assignment]
        ee: PoseStamped = parts["ee"]  # type: ignore[assignment]
        p, q = ee.pose.position, ee.pose.orientation
        proprio = proprio_vector(
            (p.x, p.y, p.z),
            (q.x, q.y, q.z, q.w),
            joint_positions(joints, ARM_JOINT_NAMES),
            joint_positions(joints, FINGER_JOINT_NAMES),
        )
        objects = parts.get("objects")
        images = {
            key.split(":", 1)[1]: image_from_msg(msg)  # type: ignore[arg-type]
            for key, msg in parts.items()
            if key.startswith("camera:")
        }
        stamp = ee.header.stamp
        return Observation(
            stamp_s=stamp.sec + stamp.nanosec * 1e-9,
            proprio=proprio,
            object_state=None if objects is None else np.asarray(objects.data, dtype=np.float64),  # type: ignore[attr-defined]
            object_state_names=() if objects is None else tuple(objects.names),  # type: ignore[attr-defined]
            images=images,
            stamp_ns=nanoseconds_from_stamp(stamp),
        )
