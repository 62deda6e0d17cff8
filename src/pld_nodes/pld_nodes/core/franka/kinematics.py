"""FR3 forward kinematics, the geometric Jacobian at any point and one damped-least-squares IK
step from a small EE pose change to a joint target.

The chain is the FR3's kinematic description (joint origins of Franka's ``fr3.urdf``, the same
numbers as the FCI documentation's Craig DH table). The driver computes the Jacobian *at the EE
point the robot reports* (``O_T_EE``), so pose and Jacobian always describe the same point,
whatever end effector is configured on the robot (and franka-sim, which reports the link-7
origin as ``O_T_EE``, is handled the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_JOINTS = 7
FLANGE_OFFSET_M = 0.107
"""Link 7 origin to flange, along link 7's z axis."""

# (xyz, roll) of each revolute joint's origin in its parent frame; every joint turns about z.
_JOINT_ORIGINS: tuple[tuple[tuple[float, float, float], float], ...] = (
    ((0.0, 0.0, 0.333), 0.0),
    ((0.0, 0.0, 0.0), -np.pi / 2),
    ((0.0, -0.316, 0.0), np.pi / 2),
    ((0.0825, 0.0, 0.0), np.pi / 2),
    ((-0.0825, 0.384, 0.0), -np.pi / 2),
    ((0.0, 0.0, 0.0), np.pi / 2),
    ((0.088, 0.0, 0.0), np.pi / 2),
)

FR3_JOINT_LOWER = (-2.7501, -1.7918, -2.9065, -3.0481, -2.8101, 0.54092, -3.0196)
FR3_JOINT_UPPER = (2.7501, 1.7918, 2.9065, -0.1458, 2.8101, 4.5205, 3.0196)
"""FR3 joint position limits (rad), from ``fr3.urdf``."""
FR3_MAX_JOINT_VELOCITY = (2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26)


def _origin(xyz: tuple[float, float, float], roll: float) -> np.ndarray:
    c, s = np.cos(roll), np.sin(roll)
    t = np.eye(4)
    t[:3, :3] = [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]
    t[:3, 3] = xyz
    return t


_ORIGINS = tuple(_origin(xyz, roll) for xyz, roll in _JOINT_ORIGINS)


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    t = np.eye(4)
    t[:2, :2] = [[c, -s], [s, c]]
    return t


def joint_frames(q: np.ndarray) -> list[np.ndarray]:
    """World transforms of the 7 joint frames (after each joint's rotation), base first."""
    q = np.asarray(q, np.float64)
    if q.shape != (N_JOINTS,):
        raise ValueError(f"expected {N_JOINTS} joint positions, got shape {q.shape}")
    frames, t = [], np.eye(4)
    for origin, angle in zip(_ORIGINS, q, strict=True):
        t = t @ origin @ _rot_z(angle)
        frames.append(t)
    return frames


def flange_pose(q: np.ndarray) -> np.ndarray:
    """4x4 pose of the flange (link 7 + 0.107 m along its z)."""
    t = joint_frames(q)[-1].copy()
    t[:3, 3] += t[:3, 2] * FLANGE_OFFSET_M
    return t


def jacobian_at(q: np.ndarray, point: np.ndarray) -> np.ndarray:
    """6x7 geometric Jacobian (v; w in the base frame) of a point rigidly attached to link 7."""
    p = np.asarray(point, np.float64)
    jac = np.empty((6, N_JOINTS))
    for i, frame in enumerate(joint_frames(q)):
        axis, origin = frame[:3, 2], frame[:3, 3]
        jac[:3, i] = np.cross(axis, p - origin)
        jac[3:, i] = axis
    return jac


def quat_xyzw(r: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (x, y, z, w), numerically stable branch."""
    tr = float(np.trace(r))
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(max(1.0 + r[i, i] - r[j, j] - r[k, k], 1e-12))
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i] = s / 4
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
    quat = np.asarray(q)
    return quat / np.linalg.norm(quat)


def ee_offset(q: np.ndarray, ee_position: np.ndarray) -> np.ndarray:
    """The EE point in link 7's frame, from a measured (q, EE position) pair."""
    t7 = joint_frames(q)[-1]
    return t7[:3, :3].T @ (np.asarray(ee_position, np.float64) - t7[:3, 3])


def ee_point(q: np.ndarray, offset_in_link7: np.ndarray) -> np.ndarray:
    """World position of a point fixed in link 7 (see :func:`ee_offset`) at joints ``q``."""
    t7 = joint_frames(q)[-1]
    return t7[:3, 3] + t7[:3, :3] @ np.asarray(offset_in_link7, np.float64)


@dataclass(frozen=True)
class IkConfig:
    damping: float = 0.02
    """Damped least squares: keeps steps bounded near singularities (units of the twist)."""
    joint_margin_rad: float = 0.05
    """Targets are kept this far inside the joint limits (the robot's reflex fires at them)."""


def ik_step(
    q: np.ndarray,
    ee_position: np.ndarray,
    delta: np.ndarray,
    config: IkConfig = IkConfig(),
    lower: tuple[float, ...] = FR3_JOINT_LOWER,
    upper: tuple[float, ...] = FR3_JOINT_UPPER,
) -> np.ndarray:
    """Joint target that moves the EE at ``ee_position`` by ``delta`` = (dx, dy, dz, rx, ry, rz)
    (metres; axis-angle radians, base frame), clamped inside the joint limits."""
    q = np.asarray(q, np.float64)
    jac = jacobian_at(q, ee_position)
    lam2 = config.damping**2
    dq = jac.T @ np.linalg.solve(jac @ jac.T + lam2 * np.eye(6), np.asarray(delta, np.float64))
    lo = np.asarray(lower) + config.joint_margin_rad
    hi = np.asarray(upper) - config.joint_margin_rad
    return np.clip(q + dq, lo, np.maximum(hi, lo))
