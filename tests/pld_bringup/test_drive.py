"""`pld-drive`, end to end: launches the sim graph, drives episodes over ROS, reports."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros


def run_job(ros_domain: int, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | {"ROS_DOMAIN_ID": str(ros_domain), "MUJOCO_GL": "egl"}
    return subprocess.run(
        [sys.executable, "-m", "pld_bringup.drive", "--out", str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pld_drive_with_the_base_vla(ros_session, ros_domain, tmp_path: Path) -> None:
    """The default job: the shipped base VLA in vla_node, on the sim, over ROS."""
    out = tmp_path / "run"
    result = run_job(ros_domain, out, "--episodes", "4")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "acting policy: **base VLA" in (out / "report.md").read_text()
    episodes = json.loads((out / "episodes.json").read_text())
    assert [e["seed"] for e in episodes] == [1000, 1001, 1002, 1003]
    assert all(e["reason"] in ("success", "timeout") for e in episodes)
    assert all(e["steps"] == 200 for e in episodes if not e["success"])
    assert (out / "logs" / "vla.log").stat().st_size > 0


def test_pld_drive_with_the_scripted_expert(ros_session, ros_domain, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_job(
        ros_domain, out, "--policy", "expert", "--episodes", "2", "--seed", "0", "--cameras"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert "| success rate | 2/2 (100%) |" in report and "Cameras on" in report
    episodes = json.loads((out / "episodes.json").read_text())
    assert [e["seed"] for e in episodes] == [0, 1]
    assert all(e["success"] and 0 < e["steps"] < 200 for e in episodes)
    png = (out / "episodes.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert (out / "logs" / "sim_bridge.log").stat().st_size > 0
