"""README's main job (``pld-run``) with CI-sized budgets, through the ROS graph: every stage
produces its artefacts, Collect is recorded by the sim_pld nodes, and Ctrl-C mid-collect
followed by the same command resumes instead of restarting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pld_nodes.core.episode_store import EpisodeStore

pytestmark = pytest.mark.ros


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pld_bringup.pipeline", "--quick", "--no-progress",
            "--out", str(out), *extra]  # fmt: skip


def _env(domain: int) -> dict[str, str]:
    return dict(os.environ) | {"ROS_DOMAIN_ID": str(domain), "MUJOCO_GL": "egl"}


def _state(out: Path) -> dict:
    try:
        return json.loads((out / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def test_main_job_quick_through_ros_resumes_after_ctrl_c(ros_session, ros_domain, tmp_path):
    out = tmp_path / "run"
    store_path = out / "collect" / "episodes.zarr"
    # 4 successes: the first graph launch records several episodes, so Ctrl-C lands mid-collect
    extra = ("--successes", "4", "--set", "collect.batch_episodes=6")
    proc = subprocess.Popen(
        _cmd(out, *extra), env=_env(ros_domain), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while True:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "collect never started recording"
        if _state(out).get("collect", {}).get("status") == "running" and (
            (store_path / "zarr.json").exists() and EpisodeStore.open(store_path).n_episodes >= 1
        ):
            break
        time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    first_log = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0, first_log[-2000:]
    before = EpisodeStore.open(store_path).n_episodes
    assert _state(out)["learn"]["status"] == "done"
    learn_mtime = (out / "learn" / "residual_actor.safetensors").stat().st_mtime_ns

    again = subprocess.run(_cmd(out, *extra), env=_env(ros_domain), capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-4000:]
    assert "stage learn: done earlier, skipped" in log and "stage collect: resuming" in log
    assert (out / "learn" / "residual_actor.safetensors").stat().st_mtime_ns == learn_mtime
    state = _state(out)
    assert all(state[s]["status"] == "done" for s in ("learn", "collect", "distill", "evaluate"))
    assert state["collect"]["artefacts"]["backend"] == "ros"

    store = EpisodeStore.open(store_path)
    assert store.n_episodes >= before
    attrs = [store.episode_attrs(i) for i in range(store.n_episodes)]
    # recorded by the ROS nodes: sim labels, arbiter modes, one seed per episode, no repeats
    assert all(a["mode"] == "hybrid" and a["label_source"] in ("sim", "timeout") for a in attrs)
    seeds = [a["seed"] for a in attrs]
    assert len(set(seeds)) == len(seeds) and min(seeds) == 20_000
    assert sum(a["success"] for a in attrs) >= 4 or store.n_episodes == 12
    assert state["distill"]["artefacts"]["episodes"] == min(4, sum(a["success"] for a in attrs))
    assert (out / "collect" / "logs_000" / "recorder.log").exists()
    report = (out / "report.md").read_text()
    assert "2. Collect (ros)" in report and "| distilled VLA |" in report
