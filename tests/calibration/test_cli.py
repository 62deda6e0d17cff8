"""``pld-calibrate`` end to end on a small synthetic session, and its one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pld_calibration.cli import main
from pld_calibration.synthetic import load_ground_truth
from pld_nodes.core.camera.calibration_files import load_camera_info, load_extrinsics


def test_synth_then_intrinsics_then_handeye(tmp_path: Path) -> None:
    session = tmp_path / "session"
    args = ["synth", "--mode", "eye_to_hand", "--views", "12", "--seed", "4", "--out"]
    assert main([*args, str(session)]) == 0
    assert (session / "session.yaml").is_file() and (session / "ground_truth.yaml").is_file()
    info, report = tmp_path / "camera_info.yaml", tmp_path / "report"
    assert main(["intrinsics", str(session), "--out", str(info), "--report", str(report)]) == 0
    assert (report / "report.md").is_file() and (report / "view_errors.png").is_file()
    ext_path = tmp_path / "extrinsics.yaml"
    argv = ["handeye", str(session), "--camera-info", str(info), "--out", str(ext_path)]
    assert main([*argv, "--report", str(report)]) == 0
    truth = load_ground_truth(session)
    assert truth is not None
    assert np.allclose(load_camera_info(info).k, truth.intrinsics.k, rtol=5e-3, atol=2.0)
    ext = load_extrinsics(ext_path)
    assert (ext.parent_frame, ext.child_frame) == ("world", "synth_optical_frame")
    assert ext.info["mode"] == "eye_to_hand" and ext.info["views"] == 12
    assert set(ext.info["methods"]) >= {"TSAI", "PARK", "HORAUD", "ANDREFF", "DANIILIDIS"}
    assert truth.hand_eye_errors(ext.as_matrix())["translation_mm"] < 2.0
    text = (report / "report.md").read_text()
    assert "## Hand-eye (eye_to_hand)" in text and "error [mm]" in text
    assert (report / "hand_eye_methods.png").stat().st_size > 1000


def test_all_and_board_commands(small_session: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["all", str(small_session), "--out", str(out)]) == 0
    for name in ("camera_info.yaml", "extrinsics.yaml", "report.md", "view_errors.png"):
        assert (out / name).is_file(), name
    assert load_extrinsics(out / "extrinsics.yaml").parent_frame == "hand"
    png, spec = tmp_path / "board.png", tmp_path / "board.yaml"
    assert main(["board", "--out", str(png), "--dpi", "150", "--save-spec", str(spec)]) == 0
    assert png.stat().st_size > 1000 and spec.is_file()


def test_bad_input_is_one_line_and_exit_2(
    small_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (small_session / "images" / "0002.png").unlink()
    code = main(["intrinsics", str(small_session), "--out", str(tmp_path / "c.yaml")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("pld-calibrate: error:") and "0002.png does not exist" in err


def test_console_script_is_installed(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pld_calibration.cli",
            "handeye",
            str(tmp_path),
            "--camera-info",
            str(tmp_path / "missing.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "session.yaml" in proc.stderr
