"""Episode recording without ROS: pair observations with arbiter steps, build store episodes,
write them off the control path.

- :class:`StepSynchronizer` pairs each arbiter step with the observation of the same stamp
  (within ``tolerance_ns``; either may arrive first) and keeps steps per episode. A step whose
  observation never arrives is counted as missing (and left out), never invented.
- :func:`build_episode` turns an episode's paired steps + its lifecycle record into the
  episode-store arrays (``STEP_KEYS`` of ``core.residual.replay`` plus images, stamps, step
  indices, versions) and attributes.
- :class:`BackgroundWriter` commits episodes to the :class:`EpisodeStore` on its own thread, so
  a slow disk never stalls a callback; a failed write (disk full) is reported with the
  reason, the store stays readable with every earlier episode, and the recorder goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.observation import Observation

_LOG = logging.getLogger(__name__)
EPISODE_SCHEMA = "pld-episode/1"


@dataclass(frozen=True)
class StepRecord:
    """The arbiter's view of one step (converted from ``ArbiterStep``)."""

    stamp_ns: int
    episode: int
    step: int
    mode: str
    t_base: int
    phase: int
    xi: float
    alpha: float
    base_action: np.ndarray
    residual_action: np.ndarray
    action: np.ndarray
    base_version: int = 0
    residual_version: int = 0
    hold_reason: str = ""


@dataclass
class EpisodeSteps:
    steps: list[tuple[StepRecord, Observation]] = field(default_factory=list)
    waiting: dict[int, StepRecord] = field(default_factory=dict)
    """Steps whose observation has not arrived yet, by stamp."""


class StepSynchronizer:
    def __init__(self, tolerance_ns: int = 1_000_000, max_observations: int = 64) -> None:
        self.tolerance_ns = tolerance_ns
        self._observations: dict[int, Observation] = {}
        self._max_obs = max_observations
        self.episodes: dict[int, EpisodeSteps] = {}
        self.finished = -1
        self.late_steps = 0

    def _match(self, stamp_ns: int, pool: Mapping[int, Any]) -> int | None:
        if stamp_ns in pool:
            return stamp_ns
        near = [s for s in pool if abs(s - stamp_ns) <= self.tolerance_ns]
        return min(near, key=lambda s: abs(s - stamp_ns)) if near else None

    def add_observation(self, stamp_ns: int, obs: Observation) -> None:
        for ep in self.episodes.values():
            key = self._match(stamp_ns, ep.waiting)
            if key is not None:
                ep.steps.append((ep.waiting.pop(key), obs))
                return
        self._observations[stamp_ns] = obs
        while len(self._observations) > self._max_obs:
            del self._observations[min(self._observations)]

    def add_step(self, record: StepRecord) -> None:
        if record.episode <= self.finished:
            self.late_steps += 1  # a step decided after its episode was committed/discarded
            return
        ep = self.episodes.setdefault(record.episode, EpisodeSteps())
        key = self._match(record.stamp_ns, self._observations)
        if key is None:
            ep.waiting[record.stamp_ns] = record
        else:
            ep.steps.append((record, self._observations.pop(key)))  # each observation once

    def paired(self, episode: int) -> int:
        """Steps of ``episode`` with both the arbiter record and the observation."""
        ep = self.episodes.get(episode)
        return 0 if ep is None else len(ep.steps)

    def pop_episode(self, episode: int) -> EpisodeSteps:
        """Take a finished episode's steps; also drops older episodes' leftovers."""
        for old in [e for e in self.episodes if e < episode]:
            del self.episodes[old]
        self.finished = max(self.finished, episode)
        return self.episodes.pop(episode, EpisodeSteps())


SAFETY_HOLD_REASON = "safety monitor hold"


def with_executed_commands(
    steps: EpisodeSteps, executed: Mapping[int, tuple[np.ndarray, bool]]
) -> tuple[EpisodeSteps, int]:
    """The episode with each step's action replaced by the command the robot executed.

    ``executed`` maps a command stamp (ns) to (action sent to the robot, whether it was a
    hold), as the safety monitor published it. A step it modified or held is stored as
    executed — the data must match what the robot did — and a hold gets a ``hold_reason``.
    Steps without an executed command (the terminal step's, never sent) keep the arbiter's.
    Returns the episode and how many steps changed.
    """
    changed = 0
    pairs: list[tuple[StepRecord, Observation]] = []
    for record, obs in steps.steps:
        sent = executed.get(record.stamp_ns)
        if sent is not None:
            action, held = sent
            action = np.asarray(action, np.float32)
            if not np.array_equal(action, record.action):  # an arbiter hold passes unchanged
                changed += 1
                reason = SAFETY_HOLD_REASON if held and not record.hold_reason else ""
                record = replace(record, action=action, hold_reason=record.hold_reason or reason)
        pairs.append((record, obs))
    return EpisodeSteps(pairs, dict(steps.waiting)), changed


def build_episode(
    steps: EpisodeSteps,
    lifecycle: Mapping[str, Any],
    *,
    camera_names: tuple[str, ...] = (),
    software_version: str = "",
) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """Store arrays + attributes for one finished episode; None if no step has data.

    ``lifecycle["step"]`` (> 0) is the number of steps the env executed: a command the arbiter
    computed for the terminal observation (it cannot know the episode just ended) was never
    executed and is left out."""
    executed = int(lifecycle.get("step", 0) or 0)
    pairs = sorted(steps.steps, key=lambda p: p[0].step)
    if executed > 0:
        pairs = [p for p in pairs if p[0].step < executed]
    if not pairs:
        return None
    recs = [r for r, _ in pairs]
    obs = [o for _, o in pairs]
    f32 = np.float32
    data: dict[str, np.ndarray] = {
        "proprio": np.asarray([o.proprio for o in obs], f32),
        "base_action": np.asarray([r.base_action for r in recs], f32),
        "residual_action": np.asarray([r.residual_action for r in recs], f32),
        "action": np.asarray([r.action for r in recs], f32),
        "phase": np.asarray([r.phase for r in recs], np.int8),
        "reward": np.zeros(len(recs), f32),
        "stamp": np.asarray([r.stamp_ns * 1e-9 for r in recs], np.float64),
        "step": np.asarray([r.step for r in recs], np.int32),
        "residual_version": np.asarray([r.residual_version for r in recs], np.int64),
    }
    if obs[0].object_state is not None:
        data["object_state"] = np.asarray([o.object_state for o in obs], f32)
    for cam in camera_names:
        data[f"images/{cam}"] = np.stack([o.images[cam] for o in obs]).astype(np.uint8)
    success = bool(lifecycle.get("success", False))
    if success:
        data["reward"][-1] = 1.0
    first = recs[0]
    expected_steps = executed if executed > 0 else max(r.step for r in recs) + 1
    attrs = {
        "schema": EPISODE_SCHEMA,
        "episode_index": int(first.episode),
        "task": lifecycle.get("task", ""),
        "instruction": lifecycle.get("instruction", ""),
        "mode": first.mode,
        "t_base": int(first.t_base),
        "alpha": float(first.alpha),
        "xi": float(first.xi),
        "success": success,
        "label_source": lifecycle.get("label_source", ""),
        "reason": lifecycle.get("reason", ""),
        "seed": int(lifecycle.get("seed", -1)),
        "base_version": int(first.base_version),
        "residual_versions": sorted({int(r.residual_version) for r in recs}),
        "start_stamp_s": float(data["stamp"][0]),
        "recorded_unix_s": time.time(),
        "software_version": software_version,
        "missing_observations": int(expected_steps - len(recs)),
        "hold_steps": int(sum(r.phase == 2 for r in recs)),
    }
    return data, attrs


class BackgroundWriter:
    """Commits episodes to a store on one worker thread, in order."""

    def __init__(
        self,
        store: EpisodeStore,
        on_result: Callable[[int | None, dict[str, Any], Exception | None], None] | None = None,
    ) -> None:
        self.store = store
        self.on_result = on_result
        self._queue: queue.Queue[Callable[[], tuple[dict, dict] | None] | None] = queue.Queue()
        self.written = 0
        self.failed = 0
        self.last_error = ""
        self.write_s: list[float] = []
        self._thread = threading.Thread(target=self._run, name="recorder_writer", daemon=True)
        self._thread.start()

    def submit(self, data: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
        self._queue.put(lambda: (data, attrs))

    def submit_build(self, build: Callable[[], tuple[dict, dict] | None]) -> None:
        """Queue an episode whose arrays are built on the writer thread (stacking hundreds of
        camera frames takes 100+ ms: never on a callback thread)."""
        self._queue.put(build)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            t0 = time.perf_counter()
            attrs: dict[str, Any] = {}
            try:
                built = item()
                if built is None:
                    continue
                data, attrs = built
                index = self.store.add_episode(data, attrs)
            except Exception as exc:  # disk full, permissions, schema: report, keep recording
                self.failed += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                _LOG.error("episode %s NOT recorded: %s", attrs.get("episode_index"), exc)
                if self.on_result:
                    self.on_result(None, attrs, exc)
                continue
            finally:
                self._queue.task_done()
            self.write_s.append(time.perf_counter() - t0)
            self.written += 1
            if self.on_result:
                self.on_result(index, attrs, None)

    def flush(self, timeout_s: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._queue.unfinished_tasks == 0

    def close(self, timeout_s: float = 60.0) -> None:
        self.flush(timeout_s)
        self._queue.put(None)
        self._thread.join(timeout_s)
