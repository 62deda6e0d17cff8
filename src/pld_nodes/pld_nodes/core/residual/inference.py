"""What residual_node does without ROS: run the current actor, swap weights safely.

- :class:`HotSwapResidual` holds one immutable ``_Running`` (actor, version, xi) reference.
  New weights are fully built and checked on the caller's (worker) thread, then published by a
  single reference assignment, so a control step sees either the old or the new actor, never a
  mix; anything wrong with a blob raises :class:`WeightsError` and leaves the running one.
- Before any weights arrive the residual is exactly zero (version 0): the robot does what the
  base policy does, which is also what a freshly initialised actor would do.
- :class:`StampPairer` matches each base action with the observation of the same stamp.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pld_nodes.core.actions import ACTION_DIM, validate_action
from pld_nodes.core.residual.checkpoint import WeightsError, actor_from_bytes, sha256_hex
from pld_nodes.core.residual.networks import ResidualActor
from pld_nodes.core.residual.replay import residual_state


@dataclass(frozen=True)
class _Running:
    actor: ResidualActor | None
    version: int
    xi: float


@dataclass(frozen=True)
class ResidualOutput:
    residual: np.ndarray
    version: int
    xi: float


class HotSwapResidual:
    def __init__(
        self,
        *,
        use_proprio: bool = True,
        use_object_state: bool = True,
        stochastic: bool = False,
        default_xi: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.use_proprio, self.use_object_state = use_proprio, use_object_state
        self.stochastic = stochastic
        self._running = _Running(None, 0, default_xi)
        self._swap_lock = threading.Lock()  # serialises loaders, never taken by infer()
        self._generator = torch.Generator().manual_seed(seed)
        self.swaps = 0
        self.rejected = 0
        self.last_error = ""

    @property
    def version(self) -> int:
        return self._running.version

    @property
    def xi(self) -> float:
        return self._running.xi

    def load(self, data: bytes, sha256: str = "", version: int | None = None) -> int:
        """Check and install new weights; return the new version. Raises WeightsError."""
        try:
            if sha256 and sha256_hex(data) != sha256.lower():
                raise WeightsError("sha256 mismatch: the weights were corrupted in transit")
            loaded = actor_from_bytes(bytes(data))
            if version is not None and version != loaded.version:
                raise WeightsError(
                    f"message says version {version}, the weights say {loaded.version}"
                )
            with self._swap_lock:
                if loaded.version <= self._running.version:
                    raise WeightsError(
                        f"version {loaded.version} is not newer than the running "
                        f"{self._running.version}"
                    )
                self._check_layout(loaded.actor)
                self._running = _Running(loaded.actor, loaded.version, loaded.xi)
                self.swaps += 1
                return loaded.version
        except WeightsError as exc:
            self.rejected += 1
            self.last_error = str(exc)
            raise

    def _check_layout(self, actor: ResidualActor) -> None:
        c = actor.config
        if (c.use_proprio, c.use_object_state) != (self.use_proprio, self.use_object_state):
            raise WeightsError(
                f"weights read proprio={c.use_proprio}, object_state={c.use_object_state}; "
                f"this node provides proprio={self.use_proprio}, "
                f"object_state={self.use_object_state}"
            )
        if actor.layout.image_keys:
            raise WeightsError("image-based residuals are not supported by this node yet")

    def infer(
        self, proprio: np.ndarray, object_state: np.ndarray | None, base_action: Any
    ) -> ResidualOutput:
        """a_delta for one step; raises ValueError (InvalidAction for the base action: not 7
        finite values in [-1, 1]) on malformed input, so the caller publishes nothing."""
        running = self._running  # one read: the whole step uses one actor
        base = validate_action(base_action, ACTION_DIM).astype(np.float32)  # InvalidAction
        state = residual_state(proprio, object_state, self.use_proprio, self.use_object_state)
        if not np.all(np.isfinite(state)):
            raise ValueError("observation contains NaN/inf")
        if running.actor is None:
            return ResidualOutput(np.zeros(ACTION_DIM, np.float32), 0, running.xi)
        if state.shape != (running.actor.layout.state_dim,):
            raise ValueError(
                f"state has {state.shape[0]} values, the actor v{running.version} expects "
                f"{running.actor.layout.state_dim}"
            )
        with torch.inference_mode():
            s = torch.from_numpy(state)[None]
            b = torch.from_numpy(base)[None]
            if self.stochastic:
                mean, log_std = running.actor.distribution_params(s, {}, b)
                noise = torch.randn(mean.shape, generator=self._generator)
                out = torch.tanh(mean + log_std.exp() * noise)
            else:
                out, _ = running.actor(s, {}, b, deterministic=True)
        return ResidualOutput(out[0].numpy().astype(np.float32), running.version, running.xi)


class StampPairer:
    """Pairs two streams (observation, base action) by exact stamp; keeps the newest few."""

    def __init__(self, max_pending: int = 8) -> None:
        self._left: dict[int, Any] = {}
        self._right: dict[int, Any] = {}
        self._max = max_pending
        self.dropped = 0

    def _add(self, mine: dict[int, Any], other: dict[int, Any], stamp: int, value: Any):
        if stamp in other:
            return other.pop(stamp)
        mine[stamp] = value
        while len(mine) > self._max:
            del mine[min(mine)]
            self.dropped += 1
        return None

    def add_observation(self, stamp_ns: int, obs: Any) -> Any | None:
        """Returns the base action with this stamp if it arrived first."""
        return self._add(self._left, self._right, stamp_ns, obs)

    def add_base_action(self, stamp_ns: int, action: Any) -> Any | None:
        """Returns the observation with this stamp if it arrived first."""
        return self._add(self._right, self._left, stamp_ns, action)
