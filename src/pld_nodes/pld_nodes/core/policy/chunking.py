"""Turning timestamped action chunks into one action per control step.

A chunk computed from the observation captured at ``t0`` holds actions for
``t0, t0 + dt, ..., t0 + (H-1) dt``. At control time ``t`` the executor uses the step
``k = round((t - t0) / dt)`` of the chunks that cover ``t``:

- **execute-k-of-H**: only the first ``execute_steps`` actions of a chunk are used; later
  steps are treated as not covered, so the caller knows a fresh chunk is due.
- **temporal ensembling** (ACT-style): every stored chunk covering ``t`` votes, weighted by
  ``exp(-ensemble_decay * age)`` where ``age`` is 0 for the oldest chunk — older predictions
  get more weight, which smooths switches between chunks. ``ensemble_decay = None`` disables
  it (newest chunk wins).
- Steps whose time has passed are never used; a chunk entirely in the past is dropped.
- Times are compared with a tolerance of half a step, so jittered clocks map to the nearest
  step instead of skipping one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChunkExecutionConfig:
    execute_steps: int = 4
    """Use at most this many leading actions of each chunk (k of execute-k-of-H)."""
    ensemble_decay: float | None = None
    """None: newest chunk wins. A float m >= 0: ACT temporal ensembling weights exp(-m * i)."""
    max_chunks: int = 16
    """Stored chunks; the oldest are dropped first."""

    def __post_init__(self) -> None:
        if self.execute_steps < 1:
            raise ValueError(f"execute_steps must be >= 1, got {self.execute_steps}")
        if self.ensemble_decay is not None and not (
            math.isfinite(self.ensemble_decay) and self.ensemble_decay >= 0.0
        ):
            raise ValueError(f"ensemble_decay must be None or >= 0, got {self.ensemble_decay}")
        if self.max_chunks < 1:
            raise ValueError(f"max_chunks must be >= 1, got {self.max_chunks}")


@dataclass(frozen=True)
class TimedChunk:
    t0: float
    step_period: float
    actions: np.ndarray  # (H, D)
    version: int = 0

    def step_at(self, t: float) -> int:
        return round((t - self.t0) / self.step_period)


class ChunkExecutor:
    """Holds recent chunks and answers "which action now?"."""

    def __init__(self, config: ChunkExecutionConfig) -> None:
        self.config = config
        self._chunks: list[TimedChunk] = []
        self.dropped_late_chunks = 0

    def add(self, chunk: TimedChunk, now: float) -> bool:
        """Store a chunk; returns False (and counts it) if all its usable steps are in the past."""
        if chunk.actions.ndim != 2 or chunk.step_period <= 0.0:
            raise ValueError(f"bad chunk: actions {chunk.actions.shape}, dt {chunk.step_period}")
        usable = min(self.config.execute_steps, chunk.actions.shape[0])
        if chunk.step_at(now) >= usable:
            self.dropped_late_chunks += 1
            return False
        if self._chunks and chunk.t0 < self._chunks[-1].t0:
            self.dropped_late_chunks += 1  # older than what we have: out of order
            return False
        self._chunks.append(chunk)
        del self._chunks[: -self.config.max_chunks]
        return True

    def _covering(self, t: float) -> list[tuple[TimedChunk, int]]:
        out = []
        for chunk in self._chunks:
            k = chunk.step_at(t)
            if 0 <= k < min(self.config.execute_steps, chunk.actions.shape[0]):
                out.append((chunk, k))
        return out

    def action_at(self, t: float) -> np.ndarray | None:
        """The action for control time ``t``, or None if no stored chunk covers it (hold)."""
        self._chunks = [c for c in self._chunks if c.step_at(t) < c.actions.shape[0]]
        covering = self._covering(t)
        if not covering:
            return None
        if self.config.ensemble_decay is None:
            chunk, k = covering[-1]
            return chunk.actions[k].copy()
        weights = np.exp(-self.config.ensemble_decay * np.arange(len(covering)))
        stacked = np.stack([c.actions[k] for c, k in covering])
        return (weights[:, None] * stacked).sum(axis=0) / weights.sum()

    def remaining_steps(self, t: float) -> int:
        """Usable future steps of the newest chunk from ``t`` on (0 = a new chunk is due)."""
        if not self._chunks:
            return 0
        newest = self._chunks[-1]
        usable = min(self.config.execute_steps, newest.actions.shape[0])
        return max(0, usable - max(newest.step_at(t), 0))

    def clear(self) -> None:
        self._chunks.clear()
