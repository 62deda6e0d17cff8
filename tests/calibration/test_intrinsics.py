"""Intrinsics recovered from synthetic renders; outlier views rejected; too few views refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pld_calibration import CalibrationError
from pld_calibration.detect import DetectionSet, detect_all
from pld_calibration.intrinsics import IntrinsicsOptions, calibrate_intrinsics
from pld_calibration.session import Session
from pld_calibration.synthetic import load_ground_truth
from pld_nodes.core.camera.calibration_files import load_camera_info, save_camera_info


@pytest.fixture(scope="module")
def detections(eye_in_hand_session: Session) -> DetectionSet:
    return detect_all(eye_in_hand_session.images(), eye_in_hand_session.board)


def test_intrinsics_match_ground_truth(
    detections: DetectionSet, eye_in_hand_session: Session, tmp_path: Path
) -> None:
    result = calibrate_intrinsics(detections, "synth")
    truth = load_ground_truth(eye_in_hand_session.root)
    assert truth is not None
    err = truth.intrinsics_errors(result.intrinsics)
    assert abs(err["fx_pct"]) < 0.5 and abs(err["fy_pct"]) < 0.5, err
    assert abs(err["cx_px"]) < 2.0 and abs(err["cy_px"]) < 2.0, err
    assert result.rms_px < 0.5
    assert not result.rejected and len(result.view_rms_px) == len(detections.detections)
    save_camera_info(tmp_path / "camera_info.yaml", result.intrinsics)
    loaded = load_camera_info(tmp_path / "camera_info.yaml")
    np.testing.assert_allclose(loaded.k, result.intrinsics.k)
    np.testing.assert_allclose(loaded.d, result.intrinsics.d)
    assert (loaded.width, loaded.height, loaded.camera_name) == (640, 480, "synth")


def test_a_corrupted_view_is_rejected(detections: DetectionSet) -> None:
    views = list(detections.detections)
    bad = views[3]
    noise = np.random.default_rng(0).normal(0.0, 4.0, bad.image_points.shape)
    views[3] = dataclasses.replace(bad, image_points=bad.image_points + noise)
    damaged = DetectionSet(detections.image_size, views)
    result = calibrate_intrinsics(damaged)
    assert list(result.rejected) == [bad.name]
    assert result.rms_px < 0.5
    kept = calibrate_intrinsics(damaged, options=IntrinsicsOptions(reject_outliers=False))
    assert kept.rms_px > 1.0 and not kept.rejected


def test_too_few_usable_views_names_the_count(detections: DetectionSet) -> None:
    few = DetectionSet(
        detections.image_size,
        detections.detections[:2],
        {"0005": "0 corners (0 markers), need 6"},
    )
    with pytest.raises(CalibrationError, match=r"at least 4 usable views, only 2 of 3 images"):
        calibrate_intrinsics(few)
