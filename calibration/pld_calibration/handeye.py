"""Hand-eye calibration: every OpenCV solver, judged by how consistently it explains the views.

eye_in_hand: camera on the hand; solves X = T_ee_cam, and the board must stay put in the base
frame, so the spread of ``T_base_board_i = T_base_ee_i @ X @ T_cam_board_i`` over the views
measures X's error. eye_to_hand: static camera, board held by the hand; solves X = T_base_cam
and the board must stay put on the hand: ``T_ee_board_i = inv(T_base_ee_i) @ X @ T_cam_board_i``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from pld_calibration import CalibrationError
from pld_calibration.board import BoardSpec
from pld_calibration.detect import Detection
from pld_calibration.transforms import (
    from_rvec_tvec,
    invert,
    make,
    pose_spread,
    rotation_angle_deg,
)
from pld_nodes.core.camera.calibration_files import CameraIntrinsics

__all__ = [
    "HAND_EYE_METHODS",
    "HandEyeResult",
    "MethodResult",
    "Mode",
    "board_pose",
    "calibrate_hand_eye",
    "implied_board_poses",
]

Mode = Literal["eye_in_hand", "eye_to_hand"]
HAND_EYE_METHODS: dict[str, int] = {
    "TSAI": cv2.CALIB_HAND_EYE_TSAI,
    "PARK": cv2.CALIB_HAND_EYE_PARK,
    "HORAUD": cv2.CALIB_HAND_EYE_HORAUD,
    "ANDREFF": cv2.CALIB_HAND_EYE_ANDREFF,
    "DANIILIDIS": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
ROBOT_WORLD_METHODS: dict[str, int] = {
    "RWHE_SHAH": cv2.CALIB_ROBOT_WORLD_HAND_EYE_SHAH,
    "RWHE_LI": cv2.CALIB_ROBOT_WORLD_HAND_EYE_LI,
}
MIN_ROTATION_DEG = 10.0  # the hand must turn at least this much between some views


@dataclass(frozen=True)
class MethodResult:
    """One solver's answer and its consistency over the views."""

    transform: np.ndarray | None  # X (4x4), None when the solver failed
    translation_rms_mm: float = float("nan")  # spread of the implied board position
    rotation_rms_deg: float = float("nan")  # spread of the implied board orientation
    corner_rms_mm: float = float("nan")  # spread of the implied board corners (the score)
    error: str = ""


@dataclass(frozen=True)
class HandEyeResult:
    """The chosen transform X (see module doc) and every method's residuals."""

    mode: Mode
    transform: np.ndarray
    method: str
    methods: dict[str, MethodResult]
    views: list[str]
    pnp_rms_px: dict[str, float] = field(default_factory=dict)

    @property
    def best(self) -> MethodResult:
        return self.methods[self.method]


def board_pose(detection: Detection, intrinsics: CameraIntrinsics) -> tuple[np.ndarray, float]:
    """T_cam_board by PnP (IPPE for the planar board, then Levenberg-Marquardt) and its RMS."""
    obj, img = detection.object_points, detection.image_points
    ok, rvec, tvec = cv2.solvePnP(obj, img, intrinsics.k, intrinsics.d, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise CalibrationError(f"{detection.name}: solvePnP failed")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, intrinsics.k, intrinsics.d, rvec, tvec)
    projected, _ = cv2.projectPoints(obj, rvec, tvec, intrinsics.k, intrinsics.d)
    rms = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - img) ** 2, axis=1))))
    return from_rvec_tvec(rvec, tvec), rms


def implied_board_poses(
    mode: Mode, x: np.ndarray, base_ee: list[np.ndarray], cam_board: list[np.ndarray]
) -> list[np.ndarray]:
    """Board pose each view implies (base frame for eye_in_hand, EE frame for eye_to_hand)."""
    if mode == "eye_in_hand":
        return [b @ x @ c for b, c in zip(base_ee, cam_board, strict=True)]
    return [invert(b) @ x @ c for b, c in zip(base_ee, cam_board, strict=True)]


def _score(
    mode: Mode,
    x: np.ndarray,
    base_ee: list[np.ndarray],
    cam_board: list[np.ndarray],
    corners: np.ndarray,
) -> MethodResult:
    poses = implied_board_poses(mode, x, base_ee, cam_board)
    t_rms, r_rms = pose_spread(poses)
    pts = np.array([p[:3, :3] @ corners.T + p[:3, 3:4] for p in poses])  # (views, 3, corners)
    corner_rms = float(np.sqrt(np.mean(np.sum((pts - pts.mean(0)) ** 2, axis=1))))
    return MethodResult(x, 1e3 * t_rms, r_rms, 1e3 * corner_rms)


def _solve(
    name: str, mode: Mode, base_ee: list[np.ndarray], cam_board: list[np.ndarray]
) -> np.ndarray:
    # eye_to_hand is eye_in_hand with the hand poses inverted (base seen from the hand).
    hand = base_ee if mode == "eye_in_hand" else [invert(t) for t in base_ee]
    if name in HAND_EYE_METHODS:
        r, t = cv2.calibrateHandEye(
            [h[:3, :3] for h in hand],
            [h[:3, 3] for h in hand],
            [c[:3, :3] for c in cam_board],
            [c[:3, 3] for c in cam_board],
            method=HAND_EYE_METHODS[name],
        )
        return make(r, t)
    # Robot-world-hand-eye (A X = Z B), solved for the camera<->hand link as well.
    if mode == "eye_in_hand":  # world = board, "gripper" = hand, "cam" = camera
        world_cam = cam_board
        base_gripper = [invert(t) for t in base_ee]
    else:  # world = static camera, "gripper" = hand, "cam" = the board on the hand
        world_cam = [invert(c) for c in cam_board]
        base_gripper = [invert(t) for t in base_ee]
    r_bw, t_bw, r_gc, t_gc = cv2.calibrateRobotWorldHandEye(
        [c[:3, :3] for c in world_cam],
        [c[:3, 3] for c in world_cam],
        [g[:3, :3] for g in base_gripper],
        [g[:3, 3] for g in base_gripper],
        method=ROBOT_WORLD_METHODS[name],
    )
    if mode == "eye_in_hand":
        return invert(make(r_gc, t_gc))  # gripper->cam is T_cam_ee; X = T_ee_cam
    return invert(make(r_bw, t_bw))  # base->world is T_cam_base; X = T_base_cam


def _check_motion(base_ee: list[np.ndarray]) -> None:
    widest = max(
        rotation_angle_deg(a[:3, :3].T @ b[:3, :3]) for a, b in itertools.combinations(base_ee, 2)
    )
    if widest < MIN_ROTATION_DEG:
        raise CalibrationError(
            f"the hand turns at most {widest:.1f} deg between views; hand-eye calibration needs "
            f"rotations of >= {MIN_ROTATION_DEG:.0f} deg about different axes"
        )


def calibrate_hand_eye(
    mode: Mode,
    ee_poses: dict[str, np.ndarray],
    detections: list[Detection],
    intrinsics: CameraIntrinsics,
    board: BoardSpec,
    min_views: int = 5,
) -> HandEyeResult:
    """Run every solver on the views that have both a detection and an EE pose; pick the best.

    ``ee_poses`` maps a view name to T_base_ee. The best method is the one whose implied board
    corners agree best across views (smallest ``corner_rms_mm``).
    """
    if mode not in ("eye_in_hand", "eye_to_hand"):
        raise CalibrationError(f"mode must be eye_in_hand or eye_to_hand, got {mode!r}")
    views = [d for d in detections if d.name in ee_poses]
    if len(views) < min_views:
        raise CalibrationError(
            f"hand-eye calibration needs at least {min_views} usable views with an EE pose, "
            f"got {len(views)}"
        )
    base_ee = [ee_poses[d.name] for d in views]
    _check_motion(base_ee)
    pnp = [board_pose(d, intrinsics) for d in views]
    cam_board = [p[0] for p in pnp]
    corners = board.corner_points()
    methods: dict[str, MethodResult] = {}
    for name in [*HAND_EYE_METHODS, *ROBOT_WORLD_METHODS]:
        try:
            x = _solve(name, mode, base_ee, cam_board)
            if not np.all(np.isfinite(x)):
                raise ValueError("non-finite result")
            methods[name] = _score(mode, x, base_ee, cam_board, corners)
        except (cv2.error, ValueError, np.linalg.LinAlgError) as exc:
            methods[name] = MethodResult(None, error=str(exc).strip().splitlines()[-1])
    solved = {k: v.transform for k, v in methods.items() if v.transform is not None}
    if not solved:
        raise CalibrationError(
            "every hand-eye method failed: "
            + "; ".join(f"{k}: {v.error}" for k, v in methods.items())
        )
    best = min(solved, key=lambda k: methods[k].corner_rms_mm)
    return HandEyeResult(
        mode=mode,
        transform=solved[best],
        method=best,
        methods=methods,
        views=[d.name for d in views],
        pnp_rms_px={d.name: p[1] for d, p in zip(views, pnp, strict=True)},
    )
