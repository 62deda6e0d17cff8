"""ChArUco corner detection per image; views without a usable board are skipped, not fatal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from pld_calibration import CalibrationError
from pld_calibration.board import BoardSpec

__all__ = ["Detection", "DetectionSet", "detect_all", "detect_board"]


@dataclass(frozen=True)
class Detection:
    """Board corners found in one image: ids, pixel positions and board-frame positions."""

    name: str
    ids: np.ndarray  # (N,) corner ids
    image_points: np.ndarray  # (N, 2) pixels, OpenCV convention (pixel centres at integers)
    object_points: np.ndarray  # (N, 3) metres in the board frame


@dataclass
class DetectionSet:
    """All views of a session: the usable detections and why the others were skipped."""

    image_size: tuple[int, int]  # (width, height)
    detections: list[Detection] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # image name -> reason

    def require(self, minimum: int, purpose: str) -> None:
        """Fail with a message naming how many views were usable when fewer than ``minimum``."""
        if len(self.detections) < minimum:
            total = len(self.detections) + len(self.skipped)
            reasons = "; ".join(f"{k}: {v}" for k, v in list(self.skipped.items())[:3])
            raise CalibrationError(
                f"{purpose} needs at least {minimum} usable views, only {len(self.detections)} "
                f"of {total} images had the board" + (f" (skipped: {reasons})" if reasons else "")
            )


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    if image.ndim == 2:
        return image
    raise CalibrationError(f"unsupported image shape {image.shape}")


def detect_board(
    image: np.ndarray,
    board: BoardSpec,
    name: str = "image",
    min_corners: int = 6,
    detector: cv2.aruco.CharucoDetector | None = None,
) -> Detection | str:
    """The detection, or the reason the view is unusable (few corners, collinear corners)."""
    cv_board = board.cv_board() if detector is None else detector.getBoard()
    detector = detector or cv2.aruco.CharucoDetector(cv_board)
    corners, ids, _, marker_ids = detector.detectBoard(_gray(image))
    found = 0 if ids is None else len(ids)
    if found < min_corners:
        markers = 0 if marker_ids is None else len(marker_ids)
        return f"{found} corners ({markers} markers), need {min_corners}"
    obj, img = cv_board.matchImagePoints(corners, ids)
    obj = np.asarray(obj, dtype=np.float64).reshape(-1, 3)
    # A single row of corners pins down no homography: calibrateCamera/solvePnP would fail.
    spread = np.linalg.svd(obj[:, :2] - obj[:, :2].mean(0), compute_uv=False)
    if spread[1] < 0.5 * board.square_length_m:
        return f"{found} corners, all on one line"
    return Detection(
        name=name,
        ids=np.asarray(ids, dtype=np.int32).reshape(-1),
        image_points=np.asarray(img, dtype=np.float64).reshape(-1, 2),
        object_points=obj,
    )


def detect_all(
    images: Iterable[tuple[str, np.ndarray]],
    board: BoardSpec,
    min_corners: int = 6,
    progress: bool = False,
) -> DetectionSet:
    """Detect the board in every (name, image); all images must have the same size."""
    detector = cv2.aruco.CharucoDetector(board.cv_board())
    result: DetectionSet | None = None
    items = images
    if progress:
        from tqdm import tqdm

        items = tqdm(images, desc="detecting", unit="img", leave=False)
    for name, image in items:
        size = (int(image.shape[1]), int(image.shape[0]))
        if result is None:
            result = DetectionSet(image_size=size)
        elif size != result.image_size:
            raise CalibrationError(
                f"{name}: image size {size[0]}x{size[1]} differs from the first image's "
                f"{result.image_size[0]}x{result.image_size[1]}"
            )
        found = detect_board(image, board, name, min_corners, detector)
        if isinstance(found, Detection):
            result.detections.append(found)
        else:
            result.skipped[name] = found
    if result is None:
        raise CalibrationError("no images given")
    return result
