"""Store statistics: counts, disk usage and recent outcomes per mode, read read-only."""

from __future__ import annotations

import threading

import numpy as np

from pld_nodes.core.episode_store import EpisodeStore
from pld_operator_panel.store_stats import StoreWatcher, read_store_stats


def _episode(n: int) -> dict[str, np.ndarray]:
    return {"action": np.zeros((n, 7), np.float32), "reward": np.zeros(n, np.float32)}


def test_counts_disk_and_outcomes_per_mode(tmp_path) -> None:
    path = tmp_path / "ep.zarr"
    store = EpisodeStore.create(path)
    outcomes = [("hybrid", True), ("base", False), ("hybrid", False), ("hybrid", True)]
    for mode, ok in outcomes:
        store.add_episode(_episode(5), {"mode": mode, "success": ok})
    stats = read_store_stats(path, window=2)
    assert (stats.n_episodes, stats.n_steps, stats.error) == (4, 20, "")
    assert stats.disk_bytes > 0 and stats.free_bytes > 0
    per_mode = {m.mode: m.outcomes for m in stats.per_mode}
    assert per_mode == {"hybrid": (False, True), "base": (False,)}  # last 2, oldest first
    assert [m.mode for m in stats.per_mode] == ["base", "hybrid"]  # a stable order


def test_missing_store_is_reported_not_raised(tmp_path) -> None:
    stats = read_store_stats(tmp_path / "nothing.zarr")
    assert stats.n_episodes == 0 and stats.error == "no store yet"


def test_watcher_rereads_on_poke(tmp_path) -> None:
    path = tmp_path / "ep.zarr"
    store = EpisodeStore.create(path)
    seen: list[int] = []
    got = threading.Event()

    def on_stats(stats) -> None:
        seen.append(stats.n_episodes)
        got.set()

    watcher = StoreWatcher(lambda: str(path), on_stats, period_s=60.0).start()
    try:
        assert got.wait(5.0)
        got.clear()
        store.add_episode(_episode(3), {"mode": "base", "success": True})
        watcher.poke()
        assert got.wait(5.0)
        assert seen[-1] == 1
    finally:
        watcher.stop()
