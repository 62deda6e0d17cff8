"""Recording core: step/observation pairing, episode building, and the background writer on
a real disk that fills up (a small tmpfs, or a file-size quota where mounting is not allowed)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pld_nodes.core.observation import Observation
from pld_nodes.core.recording import StepRecord, StepSynchronizer, build_episode


def obs(stamp: int) -> Observation:
    return Observation(stamp_s=stamp * 1e-9, proprio=np.full(16, stamp % 7, float),
                       object_state=np.zeros(7))  # fmt: skip


def rec(episode: int, step: int, stamp: int, phase: int = 0) -> StepRecord:
    a = np.full(7, step / 100, np.float32)
    return StepRecord(stamp, episode, step, "hybrid", 2, phase, 0.5, 0.6, a, a * 0, a)


def test_pairs_in_either_order_and_counts_missing() -> None:
    sync = StepSynchronizer(tolerance_ns=1000)
    sync.add_observation(100, obs(100))
    sync.add_step(rec(0, 0, 100))
    sync.add_step(rec(0, 1, 200))
    sync.add_observation(200_500, obs(200_500))  # outside tolerance: not step 1's
    sync.add_observation(200 + 400, obs(600))  # within tolerance of 200
    sync.add_step(rec(0, 2, 300))  # its observation never comes
    assert sync.paired(0) == 2
    built = build_episode(sync.pop_episode(0), {"step": 3, "success": True})
    data, attrs = built
    assert len(data["action"]) == 2 and attrs["missing_observations"] == 1
    assert data["reward"].tolist() == [0.0, 1.0]
    sync.add_step(rec(0, 3, 400))  # a late step of a finished episode is not kept
    assert sync.late_steps == 1 and 0 not in sync.episodes


def test_build_drops_unexecuted_steps_and_sets_attributes() -> None:
    sync = StepSynchronizer()
    for k in range(5):
        sync.add_observation(k, obs(k))
        sync.add_step(rec(4, k, k, phase=int(k >= 2)))
    data, attrs = build_episode(sync.pop_episode(4), {"step": 4, "success": False, "seed": 9})
    assert len(data["phase"]) == 4 and data["phase"].tolist() == [0, 0, 1, 1]
    assert (attrs["episode_index"], attrs["t_base"], attrs["seed"]) == (4, 2, 9)
    assert attrs["missing_observations"] == 0 and data["reward"].sum() == 0


WRITE_AND_VERIFY = textwrap.dedent(
    """
    import sys, numpy as np
    from pld_nodes.core.episode_store import EpisodeStore
    from pld_nodes.core.recording import BackgroundWriter
    def episode(i):
        rng = np.random.default_rng(i)
        return {"action": rng.normal(size=(20, 7)).astype(np.float32),
                "images/cam": rng.integers(0, 255, (20, 64, 64, 3), dtype=np.uint8)}
    store = EpisodeStore.create(sys.argv[1])
    writer = BackgroundWriter(store)
    for i in range(40):
        writer.submit(episode(i), {"episode_index": i, "success": True})
    writer.close()
    print("WRITTEN", writer.written, "FAILED", writer.failed)
    print("ERROR", writer.last_error)
    reopened = EpisodeStore.open(sys.argv[1])
    for j in range(reopened.n_episodes):
        want = episode(reopened.episode_attrs(j)["episode_index"])
        got = reopened.get_episode(j)
        assert all(np.array_equal(got[k], want[k]) for k in want), j
    print("VERIFIED", reopened.n_episodes)
    """
)


def _run_on_small_disk(tmp_path: Path) -> subprocess.CompletedProcess:
    """Run the script on a 1 MB tmpfs: mounted directly as root, else in a user namespace."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = [sys.executable, "-c", WRITE_AND_VERIFY, str(disk / "store.zarr")]
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)]
    if os.geteuid() == 0 and subprocess.run(mount, capture_output=True).returncode == 0:
        try:
            return subprocess.run(script, capture_output=True, text=True, timeout=120)
        finally:
            subprocess.run(["umount", str(disk)], check=False)
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a small file system here (no root, no user namespaces)")
    return run_in_user_namespace(disk)


def run_in_user_namespace(disk: Path) -> subprocess.CompletedProcess:
    shell = 'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$0" -c "$2" "$1/store.zarr"'
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", shell, sys.executable, str(disk), WRITE_AND_VERIFY],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_full_disk_is_reported_and_leaves_every_committed_episode_intact(tmp_path) -> None:
    out = _run_on_small_disk(tmp_path)
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert "VERIFIED" in lines, out.stderr[-3000:]
    written, failed = (int(x) for x in lines["WRITTEN"].split(" FAILED "))
    assert written >= 1 and failed >= 1 and written + failed == 40
    assert "No space left on device" in lines["ERROR"]
    assert int(lines["VERIFIED"]) == written  # every committed episode reads back bit-exact
    assert "NOT recorded" in out.stderr  # the failure is reported, with the reason


def test_steps_are_stored_as_the_safety_monitor_executed_them() -> None:
    from pld_nodes.core.recording import SAFETY_HOLD_REASON, EpisodeSteps, with_executed_commands

    steps = EpisodeSteps([(rec(0, k, 100 + k), obs(100 + k)) for k in range(4)])
    proposed = [r.action for r, _ in steps.steps]  # step k proposes k / 100 on every axis
    capped = proposed[1] * 0.5
    held = np.zeros_like(proposed[2])
    executed = {
        100: (proposed[0].copy(), True),  # passed unchanged (an arbiter hold: source "hold")
        101: (capped, False),  # capped by the monitor
        102: (held, True),  # held
    }  # 103: no executed command (never sent): keeps the arbiter's
    out, changed = with_executed_commands(steps, executed)
    records = [r for r, _ in out.steps]
    assert changed == 2
    np.testing.assert_array_equal(records[0].action, proposed[0])
    np.testing.assert_array_equal(records[1].action, capped)
    np.testing.assert_array_equal(records[2].action, held)
    assert records[2].hold_reason == SAFETY_HOLD_REASON and records[1].hold_reason == ""
    assert records[0].hold_reason == ""  # unchanged: not a safety intervention
    np.testing.assert_array_equal(records[3].action, proposed[3])
    np.testing.assert_array_equal(steps.steps[1][0].action, proposed[1])  # input untouched
