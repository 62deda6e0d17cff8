"""What the VLA node does on each observation, without ROS: chunk bookkeeping and when to infer.

``on_observation`` is called from the ROS executor and never runs the policy; it returns the
action for that observation if one is ready, and asks for an inference when the current chunk
is about to run out. ``run_inference`` is called on a worker thread; it returns the chunk and
the action for the newest observation if that one was still waiting.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from pld_nodes.core.policy.chunking import ChunkExecutionConfig, ChunkExecutor, TimedChunk
from pld_nodes.core.policy.interface import Policy, PolicyObservation, check_chunk


@dataclass(frozen=True)
class StampedObservation:
    stamp_s: float
    episode: int
    obs: PolicyObservation
    stamp_ns: int | None = None
    """The observation's exact stamp, passed on unchanged to the action answering it."""


class PolicyRunner:
    def __init__(
        self, policy: Policy, execution: ChunkExecutionConfig, prefetch_steps: int = 0
    ) -> None:
        self.policy = policy
        self._executor = ChunkExecutor(execution)
        self._prefetch = prefetch_steps
        self._lock = threading.Lock()
        self._latest: StampedObservation | None = None
        self._waiting = False  # the latest observation has no action yet
        self._busy = False
        self._episode = -1
        self.inferences = 0

    def on_observation(self, item: StampedObservation) -> tuple[np.ndarray | None, bool]:
        """(action for this observation or None, whether to start an inference now)."""
        with self._lock:
            if item.episode != self._episode:
                self._episode = item.episode
                self._executor.clear()
                reset = getattr(self.policy, "reset", None)
                if callable(reset):
                    reset()
            self._latest = item
            action = self._executor.action_at(item.stamp_s)
            self._waiting = action is None
            start = not self._busy and (
                self._executor.remaining_steps(item.stamp_s) <= self._prefetch or action is None
            )
            self._busy = self._busy or start
            return action, start

    def run_inference(
        self,
    ) -> tuple[TimedChunk | None, StampedObservation | None, np.ndarray | None]:
        """Infer on the newest observation. Returns (chunk, observation it answers, action)."""
        with self._lock:
            item = self._latest
        try:
            if item is None:
                return None, None, None
            actions = check_chunk(self.policy.infer(item.obs), self.policy.spec)
            chunk = TimedChunk(
                item.stamp_s, self.policy.spec.step_period_s, actions, self.policy.spec.version
            )
            with self._lock:
                self.inferences += 1
                if item.episode != self._episode:
                    return None, None, None  # the episode changed while we were thinking
                latest = self._latest
                self._executor.add(chunk, now=latest.stamp_s if latest else item.stamp_s)
                action = None
                if self._waiting and latest is not None:
                    action = self._executor.action_at(latest.stamp_s)
                    self._waiting = action is None
                return chunk, latest, action
        finally:
            with self._lock:
                self._busy = False

    def claim_retry(self) -> bool:
        """After an inference: True (and marked busy) if the newest observation still waits."""
        with self._lock:
            if self._waiting and not self._busy and self._latest is not None:
                self._busy = True
                return True
            return False
