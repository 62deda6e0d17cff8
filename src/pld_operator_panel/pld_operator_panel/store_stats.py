"""Episode-store statistics for the panel, read read-only (no Qt, no ROS).

The store is the only record of outcomes that survives the panel, so success rates per mode
and the disk usage are recomputed from it rather than counted by the panel.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from pld_nodes.core.episode_store import EpisodeStore, EpisodeStoreError

from .model import ModeStats, StoreStats

MODES_SHOWN = ("base", "residual", "hybrid", "eval")


def directory_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (zarr chunks are many small files)."""
    total = 0
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def _free_bytes(path: Path) -> int:
    probe = path if path.exists() else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def read_store_stats(path: str | Path, window: int = 20) -> StoreStats:
    """Counts, disk usage and the last ``window`` outcomes per mode; never raises for I/O."""
    path = Path(path)
    free = _free_bytes(path)
    if not path.exists():
        return StoreStats(str(path), 0, 0, 0, free, error="no store yet")
    try:
        store = EpisodeStore.open(path, mode="r")
    except EpisodeStoreError as exc:
        return StoreStats(str(path), 0, 0, directory_bytes(path), free, error=str(exc))
    outcomes: dict[str, list[bool]] = {}
    for i in range(store.n_episodes):
        attrs = store.episode_attrs(i)
        if attrs.get("discarded"):
            continue
        mode = str(attrs.get("stage") if attrs.get("stage") == "eval" else attrs.get("mode", ""))
        outcomes.setdefault(mode, []).append(bool(attrs.get("success")))
    order = [m for m in MODES_SHOWN if m in outcomes] + sorted(set(outcomes) - set(MODES_SHOWN))
    per_mode = tuple(ModeStats(m, tuple(outcomes[m][-window:])) for m in order)
    return StoreStats(
        str(path), store.n_episodes, store.n_steps, directory_bytes(path), free, per_mode
    )


class StoreWatcher:
    """Re-reads the store every ``period_s`` on its own thread and hands the stats over."""

    def __init__(
        self,
        path: Callable[[], str],
        on_stats: Callable[[StoreStats], None],
        period_s: float = 2.0,
        window: int = 20,
    ) -> None:
        self._path = path
        self._on_stats = on_stats
        self._period_s = period_s
        self._window = window
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-watcher", daemon=True)

    def start(self) -> StoreWatcher:
        self._thread.start()
        return self

    def poke(self) -> None:
        """Read again now (e.g. right after a label: the operator expects the count to move)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            path = self._path()
            if path:
                try:
                    self._on_stats(read_store_stats(path, self._window))
                except Exception as exc:  # a half-written store must not kill the watcher
                    self._on_stats(StoreStats(path, 0, 0, 0, 0, error=repr(exc)))
            self._wake.wait(self._period_s)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
