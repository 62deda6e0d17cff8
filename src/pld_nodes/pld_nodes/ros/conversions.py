"""numpy <-> ROS message conversions used at the edge of every node (no cv_bridge needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, WrenchStamped
from sensor_msgs.msg import CameraInfo, Image, JointState


def stamp_from_seconds(t: float) -> Time:
    total_ns = round(t * 1e9)
    return Time(sec=total_ns // 1_000_000_000, nanosec=total_ns % 1_000_000_000)


def stamp_from_nanoseconds(ns: int) -> Time:
    """Exact: use it to pass on a stamp that was received (``stamp_from_seconds`` is not)."""
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def nanoseconds_from_stamp(stamp: Time) -> int:
    """Exact integer key of a stamp (pairing streams by stamp must not go through floats)."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def seconds_from_stamp(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def image_to_msg(image: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """An HxWx3 uint8 RGB array (row 0 = top of the picture) as an rgb8 Image."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8 RGB, got {image.dtype} {image.shape}")
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding, msg.is_bigendian, msg.step = "rgb8", 0, int(image.shape[1] * 3)
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def image_from_msg(msg: Image) -> np.ndarray:
    """An rgb8/bgr8 Image as an HxWx3 uint8 RGB array (copy-free view of the message data)."""
    if msg.encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"unsupported image encoding {msg.encoding!r} (rgb8 or bgr8 expected)")
    data = np.frombuffer(
        bytes(msg.data) if not isinstance(msg.data, bytes) else msg.data, dtype=np.uint8
    )
    if data.size != msg.step * msg.height or msg.step < msg.width * 3:
        raise ValueError(f"image data of {data.size} B does not match {msg.height}x{msg.step}")
    image = data.reshape(msg.height, msg.step)[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
    return image[..., ::-1] if msg.encoding == "bgr8" else image


def pinhole_camera_info(
    fovy_deg: float, height: int, width: int, stamp: Time, frame_id: str
) -> CameraInfo:
    """CameraInfo of an ideal pinhole camera with vertical field of view ``fovy_deg``."""
    f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    msg = CameraInfo()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height, msg.width = height, width
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def joint_state(
    names: Sequence[str], positions: Sequence[float], stamp: Time, frame_id: str = ""
) -> JointState:
    msg = JointState()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.name = list(names)
    msg.position = [float(p) for p in positions]
    return msg


def pose_stamped(
    position: Sequence[float], quat_xyzw: Sequence[float], stamp: Time, frame_id: str
) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in position)
    q.x, q.y, q.z, q.w = (float(v) for v in quat_xyzw)
    return msg


def wrench_stamped(force_torque: Sequence[float], stamp: Time, frame_id: str) -> WrenchStamped:
    """``force_torque``: fx, fy, fz (N), tx, ty, tz (N·m)."""
    msg = WrenchStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    f, t = msg.wrench.force, msg.wrench.torque
    f.x, f.y, f.z, t.x, t.y, t.z = (float(v) for v in force_torque)
    return msg
