"""Camera intrinsics from ChArUco detections (cv2.calibrateCamera) with outlier-view rejection."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from pld_calibration import CalibrationError
from pld_calibration.detect import Detection, DetectionSet
from pld_nodes.core.camera.calibration_files import CameraIntrinsics

__all__ = ["IntrinsicsOptions", "IntrinsicsResult", "calibrate_intrinsics", "view_rms"]


@dataclass(frozen=True)
class IntrinsicsOptions:
    """How to fit; defaults suit ordinary lenses (plumb_bob with k3 fixed at 0)."""

    fix_k3: bool = True  # k3 is poorly constrained for normal lenses and overfits
    zero_tangent: bool = False  # fix p1 = p2 = 0
    reject_outliers: bool = True  # drop the worst view while it is far off the others
    outlier_factor: float = 3.0  # a view is an outlier if its RMS > factor * median view RMS
    outlier_min_px: float = 0.5  # ... and above this (never reject views that are all good)
    min_views: int = 4  # fewer usable views than this is an error

    def __post_init__(self) -> None:
        if self.min_views < 3:
            raise CalibrationError(f"min_views must be >= 3, got {self.min_views}")
        if self.outlier_factor <= 1.0 or self.outlier_min_px < 0.0:
            raise CalibrationError(
                f"outlier_factor must be > 1 and outlier_min_px >= 0, got "
                f"{self.outlier_factor} and {self.outlier_min_px}"
            )

    def flags(self) -> int:
        flags = cv2.CALIB_FIX_K3 if self.fix_k3 else 0
        return flags | (cv2.CALIB_ZERO_TANGENT_DIST if self.zero_tangent else 0)


@dataclass(frozen=True)
class IntrinsicsResult:
    """The calibrated camera and how well it explains every view."""

    intrinsics: CameraIntrinsics
    rms_px: float  # over all corners of the kept views
    view_rms_px: dict[str, float]  # kept views
    rejected: dict[str, float] = field(default_factory=dict)  # outlier view -> its RMS then
    skipped: dict[str, str] = field(default_factory=dict)  # no usable board -> reason
    corner_count: int = 0


def view_rms(
    detection: Detection, k: np.ndarray, d: np.ndarray, rvec: np.ndarray, tvec: np.ndarray
) -> float:
    projected, _ = cv2.projectPoints(detection.object_points, rvec, tvec, k, d)
    err = projected.reshape(-1, 2) - detection.image_points
    return float(np.sqrt(np.mean(np.sum(err**2, axis=1))))


def _fit(
    views: list[Detection], size: tuple[int, int], flags: int
) -> tuple[float, np.ndarray, np.ndarray, list[float]]:
    obj = [v.object_points.astype(np.float32) for v in views]
    img = [v.image_points.astype(np.float32) for v in views]
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    try:
        rms, k, d, rvecs, tvecs = cv2.calibrateCamera(
            obj, img, size, None, None, flags=flags, criteria=criteria
        )
    except cv2.error as exc:
        raise CalibrationError(f"cv2.calibrateCamera failed: {exc.err}") from exc
    errors = [view_rms(v, k, d, r, t) for v, r, t in zip(views, rvecs, tvecs, strict=True)]
    return float(rms), k, d.reshape(-1), errors


def calibrate_intrinsics(
    detections: DetectionSet,
    camera_name: str = "camera",
    options: IntrinsicsOptions | None = None,
) -> IntrinsicsResult:
    """Fit K and distortion; with ``reject_outliers`` drop the worst view until all agree."""
    options = options or IntrinsicsOptions()
    detections.require(options.min_views, "intrinsics calibration")
    views = list(detections.detections)
    rejected: dict[str, float] = {}
    while True:
        rms, k, d, errors = _fit(views, detections.image_size, options.flags())
        worst = int(np.argmax(errors))
        limit = max(options.outlier_factor * float(np.median(errors)), options.outlier_min_px)
        if not options.reject_outliers or errors[worst] <= limit or len(views) <= options.min_views:
            break
        rejected[views[worst].name] = errors[worst]
        views.pop(worst)
    width, height = detections.image_size
    return IntrinsicsResult(
        intrinsics=CameraIntrinsics(width=width, height=height, k=k, d=d, camera_name=camera_name),
        rms_px=rms,
        view_rms_px={v.name: e for v, e in zip(views, errors, strict=True)},
        rejected=rejected,
        skipped=dict(detections.skipped),
        corner_count=int(sum(len(v.ids) for v in views)),
    )
