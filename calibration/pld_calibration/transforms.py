"""4x4 homogeneous transforms: the one pose representation used inside the package.

``T_a_b`` maps points in frame b to frame a (the pose of b in a), matching
``Extrinsics.as_matrix()``.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

__all__ = [
    "from_pos_quat",
    "from_rvec_tvec",
    "invert",
    "make",
    "pose_spread",
    "rotation_angle_deg",
    "to_pos_quat",
]


def make(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    t[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return t


def invert(t: np.ndarray) -> np.ndarray:
    r = t[:3, :3]
    return make(r.T, -r.T @ t[:3, 3])


def from_pos_quat(position: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    return make(Rotation.from_quat(quat_xyzw).as_matrix(), position)


def to_pos_quat(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return t[:3, 3].copy(), Rotation.from_matrix(t[:3, :3]).as_quat()


def from_rvec_tvec(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    return make(cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3))[0], tvec)


def rotation_angle_deg(r: np.ndarray) -> float:
    """Angle of a rotation matrix (e.g. the difference R_a.T @ R_b) in degrees."""
    return float(np.degrees(Rotation.from_matrix(r).magnitude()))


def pose_spread(poses: list[np.ndarray]) -> tuple[float, float]:
    """RMS distance (m) and RMS angle (deg) of poses from their mean: how well they agree."""
    positions = np.array([p[:3, 3] for p in poses])
    mean_rot = Rotation.from_matrix(np.array([p[:3, :3] for p in poses])).mean()
    angles = (mean_rot.inv() * Rotation.from_matrix([p[:3, :3] for p in poses])).magnitude()
    t_rms = float(np.sqrt(np.mean(np.sum((positions - positions.mean(0)) ** 2, axis=1))))
    return t_rms, float(np.degrees(np.sqrt(np.mean(angles**2))))
