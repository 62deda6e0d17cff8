"""The episode lifecycle as an explicit state machine (episode_manager's core, no ROS).

::

    idle --start--> resetting --reset ok--> running --env ended / stop / timeout--> awaiting_label
      ^                 |reset failed            |discard                 |label      |discard
      |                 v                        v                        v           v
      +------------- idle               discarded <------------------ committed  discarded
    (committed and discarded are final for that episode; the next ``start`` begins a new one)

- In the sim, the env's own success check ends an episode: with ``auto_label`` it is committed
  at once with label source ``sim`` (a timeout is a failure, label source ``timeout``).
- On the robot an operator labels success or failure, or discards the episode.
- Every transition not in the diagram raises :class:`LifecycleError` naming the state, so a
  late or duplicated request (a double click in the panel) can never relabel an episode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

IDLE, RESETTING, RUNNING = "idle", "resetting", "running"
AWAITING_LABEL, COMMITTED, DISCARDED = "awaiting_label", "committed", "discarded"
FINAL_STATES = (COMMITTED, DISCARDED)


class LifecycleError(RuntimeError):
    """A request that the current state does not allow."""


@dataclass(frozen=True)
class EpisodeRecord:
    index: int
    mode: str
    seed: int = -1
    state: str = IDLE
    reason: str = ""
    """Why it ended: success | timeout | stopped | reset_failed | discarded."""
    success: bool = False
    label_source: str = ""
    steps: int = 0
    env_index: int = -1
    """The episode index of the env/robot driver (the one stamped on every step record)."""
    started_unix_s: float = field(default_factory=time.time)


class EpisodeLifecycle:
    def __init__(self, auto_label: bool = True, first_index: int = 0) -> None:
        self.auto_label = auto_label
        self._next_index = first_index
        self.current: EpisodeRecord | None = None
        self.history: list[EpisodeRecord] = []

    @property
    def state(self) -> str:
        return IDLE if self.current is None else self.current.state

    def _require(self, *states: str, action: str) -> EpisodeRecord:
        if self.state not in states:
            raise LifecycleError(f"cannot {action} while {self.state}; allowed in {states}")
        assert self.current is not None or IDLE in states
        return self.current  # type: ignore[return-value]

    def _set(self, **changes: object) -> EpisodeRecord:
        assert self.current is not None
        self.current = replace(self.current, **changes)  # type: ignore[arg-type]
        if self.current.state in FINAL_STATES or self.current.reason == "reset_failed":
            self.history.append(self.current)
        return self.current

    # ------------------------------------------------------------------ transitions
    def start(self, mode: str, seed: int = -1) -> EpisodeRecord:
        """Begin a new episode: resetting (allowed when idle or after a final state)."""
        if self.current is not None and self.current.state not in (*FINAL_STATES, IDLE):
            raise LifecycleError(f"cannot start while {self.current.state}")
        self.current = EpisodeRecord(index=self._next_index, mode=mode, seed=seed, state=RESETTING)
        self._next_index += 1
        return self.current

    def reset_done(
        self, ok: bool, seed: int = -1, message: str = "", env_index: int = -1
    ) -> EpisodeRecord:
        self._require(RESETTING, action="finish a reset")
        if not ok:
            self._set(state=IDLE, reason="reset_failed", label_source=message)
            return self.current  # type: ignore[return-value]
        return self._set(state=RUNNING, seed=seed, env_index=env_index, started_unix_s=time.time())

    def step(self, steps: int) -> None:
        if self.state == RUNNING:
            self._set(steps=steps)

    def env_ended(self, success: bool, reason: str, steps: int) -> EpisodeRecord:
        """The env (sim success check / time limit) ended the running episode."""
        self._require(RUNNING, action="end an episode")
        self._set(state=AWAITING_LABEL, reason=reason, steps=steps, success=success)
        if self.auto_label:
            return self.label(success, "sim" if reason == "success" else "timeout")
        return self.current  # type: ignore[return-value]

    def stop(self) -> EpisodeRecord:
        """Operator stop: the episode waits for a label."""
        self._require(RUNNING, action="stop")
        return self._set(state=AWAITING_LABEL, reason="stopped")

    def label(self, success: bool, source: str) -> EpisodeRecord:
        self._require(AWAITING_LABEL, action="label")
        return self._set(state=COMMITTED, success=bool(success), label_source=source)

    def discard(self) -> EpisodeRecord:
        self._require(RUNNING, AWAITING_LABEL, action="discard")
        return self._set(state=DISCARDED, reason="discarded", success=False)
