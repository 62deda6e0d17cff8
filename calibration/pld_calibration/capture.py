"""Pairing camera frames with the robot's EE pose for a calibration session (no ROS).

A sample is only as good as its pose: the pose must be the one at the image's capture stamp
(nearest within ``tolerance_s``), and the arm must have been still around that instant (a
rolling-shutter image of a moving arm does not match any single pose).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from pld_calibration import CalibrationError

__all__ = ["PoseBuffer", "StampedPose"]


@dataclass(frozen=True)
class StampedPose:
    stamp_ns: int
    position: np.ndarray  # (3,) m, base frame
    quat_xyzw: np.ndarray  # (4,)


class PoseBuffer:
    """The last few seconds of EE poses, looked up by stamp."""

    def __init__(self, horizon_s: float = 5.0) -> None:
        self._horizon_ns = int(horizon_s * 1e9)
        self._poses: deque[StampedPose] = deque()

    def add(self, pose: StampedPose) -> None:
        self._poses.append(pose)
        while self._poses and self._poses[0].stamp_ns < pose.stamp_ns - self._horizon_ns:
            self._poses.popleft()

    def pose_at(
        self,
        stamp_ns: int,
        tolerance_s: float = 0.02,
        still_window_s: float = 0.2,
        still_tolerance_m: float = 0.0005,
    ) -> StampedPose:
        """The pose nearest ``stamp_ns``; CalibrationError if none is close or the arm moved."""
        if not self._poses:
            raise CalibrationError("no EE pose received yet (is /robot/ee_pose published?)")
        nearest = min(self._poses, key=lambda p: abs(p.stamp_ns - stamp_ns))
        gap_s = abs(nearest.stamp_ns - stamp_ns) / 1e9
        if gap_s > tolerance_s:
            raise CalibrationError(
                f"no EE pose within {tolerance_s * 1e3:.0f} ms of the image "
                f"(nearest {gap_s * 1e3:.0f} ms)"
            )
        window = [
            p.position for p in self._poses if abs(p.stamp_ns - stamp_ns) <= still_window_s * 1e9
        ]
        spread = float(np.max(np.linalg.norm(np.asarray(window) - nearest.position, axis=1)))
        if spread > still_tolerance_m:
            raise CalibrationError(
                f"the arm moved {spread * 1e3:.1f} mm around the image: "
                "hold it still and capture again"
            )
        return nearest
