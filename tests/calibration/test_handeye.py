"""Hand-eye recovered in both modes within 2 mm / 0.5 deg; the result file round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pld_calibration import CalibrationError
from pld_calibration.detect import detect_all
from pld_calibration.handeye import calibrate_hand_eye
from pld_calibration.intrinsics import calibrate_intrinsics
from pld_calibration.session import Session
from pld_calibration.synthetic import load_ground_truth
from pld_nodes.core.camera.calibration_files import Extrinsics, load_extrinsics, save_extrinsics


@pytest.mark.parametrize("which", ["eye_in_hand_session", "eye_to_hand_session"])
def test_hand_eye_matches_ground_truth(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    session: Session = request.getfixturevalue(which)
    truth = load_ground_truth(session.root)
    assert truth is not None
    detections = detect_all(session.images(), session.board)
    intrinsics = calibrate_intrinsics(detections, "synth").intrinsics
    result = calibrate_hand_eye(
        session.mode,  # type: ignore[arg-type]
        session.ee_poses(),
        detections.detections,
        intrinsics,
        session.board,
    )
    err = truth.hand_eye_errors(result.transform)
    assert err["translation_mm"] < 2.0 and err["rotation_deg"] < 0.5, err
    assert result.best.corner_rms_mm == min(
        m.corner_rms_mm for m in result.methods.values() if m.transform is not None
    )
    assert {"TSAI", "PARK", "HORAUD", "ANDREFF", "DANIILIDIS"} <= set(result.methods)
    # The residual is meaningful: a wrong transform spreads the implied board by centimetres.
    assert result.best.translation_rms_mm < 1.0 and result.best.rotation_rms_deg < 0.2
    parent = session.ee_frame if session.mode == "eye_in_hand" else session.base_frame
    ext = Extrinsics.from_matrix(result.transform, parent, "synth_optical_frame", method="x")
    save_extrinsics(tmp_path / "extrinsics.yaml", ext)
    loaded = load_extrinsics(tmp_path / "extrinsics.yaml")
    np.testing.assert_allclose(loaded.as_matrix(), result.transform, atol=1e-9)
    assert loaded.parent_frame == truth.hand_eye.parent_frame


def test_hand_eye_refuses_poses_without_rotation(eye_in_hand_session: Session) -> None:
    detections = detect_all(eye_in_hand_session.images(), eye_in_hand_session.board)
    poses = eye_in_hand_session.ee_poses()
    still = {name: _translate(p) for name, p in poses.items()}
    truth = load_ground_truth(eye_in_hand_session.root)
    assert truth is not None
    with pytest.raises(CalibrationError, match=r"hand turns at most 0\.0 deg"):
        calibrate_hand_eye(
            "eye_in_hand", still, detections.detections, truth.intrinsics, eye_in_hand_session.board
        )


def test_hand_eye_needs_enough_views_with_poses(eye_in_hand_session: Session) -> None:
    detections = detect_all(eye_in_hand_session.images(), eye_in_hand_session.board)
    poses = dict(list(eye_in_hand_session.ee_poses().items())[:3])
    truth = load_ground_truth(eye_in_hand_session.root)
    assert truth is not None
    with pytest.raises(CalibrationError, match="at least 5 usable views with an EE pose, got 3"):
        calibrate_hand_eye(
            "eye_in_hand", poses, detections.detections, truth.intrinsics, eye_in_hand_session.board
        )


def _translate(pose: np.ndarray) -> np.ndarray:
    """The same position with the identity orientation."""
    out = np.eye(4)
    out[:3, 3] = pose[:3, 3]
    return out
