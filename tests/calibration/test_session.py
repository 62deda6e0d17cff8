"""Session loading refuses bad recordings with a message naming the file and the problem."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from pld_calibration import CalibrationError
from pld_calibration.session import load_session


def _edit(session: Path, change: Any) -> None:
    path = session / "session.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_valid_session_loads(small_session: Path) -> None:
    session = load_session(small_session)
    assert len(session.samples) == 8 and len(session.ee_poses()) == 8
    names = [name for name, _ in session.images()]
    assert names == [f"{i:04d}" for i in range(8)]


def test_image_without_pose_is_a_count_mismatch(small_session: Path) -> None:
    _edit(small_session, lambda d: d["samples"].pop())
    with pytest.raises(CalibrationError, match=r"8 images in images/ but 7 samples.*0007.png"):
        load_session(small_session)


def test_non_unit_quaternion(small_session: Path) -> None:
    def scale(d: dict[str, Any]) -> None:
        d["samples"][2]["ee_quat_xyzw"] = [2 * v for v in d["samples"][2]["ee_quat_xyzw"]]

    _edit(small_session, scale)
    with pytest.raises(CalibrationError, match=r"samples\[2\].ee_quat_xyzw is not a unit"):
        load_session(small_session)


def test_non_finite_position(small_session: Path) -> None:
    _edit(small_session, lambda d: d["samples"][1].update(ee_position=[0.1, float("nan"), 0.2]))
    with pytest.raises(CalibrationError, match=r"samples\[1\].ee_position must be 3 finite"):
        load_session(small_session)


def test_missing_pose(small_session: Path) -> None:
    _edit(small_session, lambda d: d["samples"][0].pop("ee_quat_xyzw"))
    with pytest.raises(CalibrationError, match=r"samples\[0\]: needs ee_position and ee_quat"):
        load_session(small_session)


def test_missing_image(small_session: Path) -> None:
    (small_session / "images" / "0004.png").unlink()
    with pytest.raises(CalibrationError, match=r"samples\[4\]: image file .*0004.png does not"):
        load_session(small_session)


def test_bad_mode_and_missing_file(small_session: Path, tmp_path: Path) -> None:
    _edit(small_session, lambda d: d.update(mode="eye_on_hand"))
    with pytest.raises(CalibrationError, match="mode must be one of"):
        load_session(small_session)
    with pytest.raises(CalibrationError, match="cannot read"):
        load_session(tmp_path / "nowhere")


def test_intrinsics_sessions_need_no_poses(small_session: Path, tmp_path: Path) -> None:
    copy = tmp_path / "intrinsics_only"
    shutil.copytree(small_session, copy)

    def strip(d: dict[str, Any]) -> None:
        d["mode"] = "intrinsics"
        d["samples"] = [{"image": s["image"]} for s in d["samples"]]

    _edit(copy, strip)
    assert load_session(copy).ee_poses() == {}
