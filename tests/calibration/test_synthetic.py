"""The synthetic renderer's ground truth agrees with what is detected in its images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pld_calibration.detect import detect_all
from pld_calibration.session import Session, load_session
from pld_calibration.synthetic import SynthConfig, load_ground_truth, render_session
from pld_calibration.transforms import invert


def _residuals(session: Session) -> np.ndarray:
    truth = load_ground_truth(session.root)
    assert truth is not None
    detections = detect_all(session.images(), session.board)
    assert not detections.skipped
    x, board, k = truth.hand_eye.as_matrix(), truth.board.as_matrix(), truth.intrinsics.k
    poses = session.ee_poses()
    out = []
    for d in detections.detections:
        if session.mode == "eye_in_hand":
            cam_board = invert(poses[d.name] @ x) @ board
        else:
            cam_board = invert(x) @ poses[d.name] @ board
        pts = cam_board[:3, :3] @ d.object_points.T + cam_board[:3, 3:4]
        out.append(d.image_points - ((k @ pts)[:2] / pts[2]).T)
    return np.concatenate(out)


def test_ground_truth_projects_onto_detected_corners(
    eye_in_hand_session: Session, eye_to_hand_session: Session
) -> None:
    for session in (eye_in_hand_session, eye_to_hand_session):
        res = _residuals(session)
        # Principal point at ((w-1)/2, (h-1)/2): w/2 would shift every corner by 0.5 px.
        assert np.all(np.abs(res.mean(axis=0)) < 0.05), res.mean(axis=0)
        assert np.sqrt(np.mean(np.sum(res**2, axis=1))) < 0.15


def test_sessions_load_back(eye_in_hand_session: Session) -> None:
    loaded = load_session(eye_in_hand_session.root)
    assert loaded.samples == eye_in_hand_session.samples
    assert loaded.mode == "eye_in_hand" and len(loaded.samples) == 20
    truth = load_ground_truth(eye_in_hand_session.root)
    assert truth is not None
    np.testing.assert_allclose(truth.intrinsics.k, SynthConfig().intrinsics().k)
    assert truth.hand_eye.parent_frame == loaded.ee_frame


def test_same_seed_same_session(tmp_path: Path) -> None:
    cfg = SynthConfig(mode="eye_to_hand", views=2, seed=7, width=320, height=240)
    a, b = render_session(cfg, tmp_path / "a"), render_session(cfg, tmp_path / "b")
    assert a.samples == b.samples
    for (_, img_a), (_, img_b) in zip(a.images(), b.images(), strict=True):
        np.testing.assert_array_equal(img_a, img_b)
    other = render_session(SynthConfig(mode="eye_to_hand", views=2, seed=8), tmp_path / "c")
    assert other.samples[0].ee_position != a.samples[0].ee_position
