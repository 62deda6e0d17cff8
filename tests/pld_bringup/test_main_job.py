"""README's main job, end to end: launches the sim graph, drives episodes over ROS, reports."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros


def test_main_job_runs_episodes_and_writes_a_report(
    ros_session, ros_domain, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    env = dict(os.environ) | {"ROS_DOMAIN_ID": str(ros_domain), "MUJOCO_GL": "egl"}
    result = subprocess.run(
        [sys.executable, "-m", "pld_bringup.main_job", "--episodes", "2", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert "| success rate | 2/2 (100%) |" in report
    episodes = json.loads((out / "episodes.json").read_text())
    assert [e["seed"] for e in episodes] == [0, 1]
    assert all(e["success"] and 0 < e["steps"] < 200 for e in episodes)
    png = (out / "episodes.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert (out / "logs" / "sim_bridge.log").stat().st_size > 0
