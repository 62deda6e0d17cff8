"""Policy interface shared by all base-policy backends and their callers.

Observation: camera images (HxWx3 uint8, row 0 = top), proprio (the flat layout of
``pld_nodes.core.observation.proprio_vector``), the language instruction and, in sim only,
privileged object state. Output: an action chunk (horizon x action_dim, float32, every entry in
[-1, 1]) whose step k is meant for time ``stamp + k * step_period_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from pld_nodes.core.actions import ACTION_DIM


@dataclass(frozen=True)
class PolicySpec:
    """What a policy expects and produces; sent as metadata by servers, checked by clients."""

    name: str
    """Human-readable id (e.g. ``builtin-flow``, ``pi0-libero`` on an openpi server)."""
    action_dim: int = ACTION_DIM
    chunk_horizon: int = 8
    """Actions per inference call."""
    step_period_s: float = 0.05
    """Time between consecutive actions of a chunk (the control period)."""
    image_keys: tuple[str, ...] = ()
    """Camera names the policy reads; empty = state-only policy."""
    image_size: tuple[int, int] = (128, 128)
    """(height, width) the policy expects; callers resize before inference."""
    proprio_dim: int = 16
    uses_object_state: bool = False
    """True for sim-only policies that read privileged object state."""
    object_state_dim: int = 0
    version: int = 0
    """Weights version; bumps when the backend reloads new weights."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("PolicySpec.name must not be empty")
        if self.action_dim < 1 or self.chunk_horizon < 1 or self.proprio_dim < 0:
            raise ValueError(
                f"action_dim ({self.action_dim}) and chunk_horizon ({self.chunk_horizon}) must be "
                f">= 1 and proprio_dim ({self.proprio_dim}) >= 0"
            )
        if not math.isfinite(self.step_period_s) or self.step_period_s <= 0.0:
            raise ValueError(f"step_period_s must be > 0, got {self.step_period_s!r}")
        if self.uses_object_state and self.object_state_dim < 1:
            raise ValueError("uses_object_state needs object_state_dim >= 1")


@dataclass(frozen=True)
class PolicyObservation:
    proprio: np.ndarray
    instruction: str
    images: dict[str, np.ndarray] = field(default_factory=dict)
    object_state: np.ndarray | None = None

    def validate(self, spec: PolicySpec) -> None:
        """Raise ValueError naming the first mismatch between this observation and ``spec``."""
        if self.proprio.shape != (spec.proprio_dim,):
            raise ValueError(f"proprio shape {self.proprio.shape}, expected ({spec.proprio_dim},)")
        if not np.all(np.isfinite(self.proprio)):
            raise ValueError("proprio contains NaN/inf")
        missing = [k for k in spec.image_keys if k not in self.images]
        if missing:
            raise ValueError(f"missing images {missing}; policy reads {list(spec.image_keys)}")
        for key in spec.image_keys:
            img = self.images[key]
            if img.dtype != np.uint8 or img.shape != (*spec.image_size, 3):
                raise ValueError(
                    f"image {key!r} is {img.dtype} {img.shape}, expected uint8 "
                    f"{(*spec.image_size, 3)}"
                )
        got = None if self.object_state is None else self.object_state.shape
        if spec.uses_object_state and got != (spec.object_state_dim,):
            raise ValueError(f"object_state {got}, expected ({spec.object_state_dim},)")


@runtime_checkable
class Policy(Protocol):
    """A base policy backend."""

    @property
    def spec(self) -> PolicySpec: ...

    def infer(self, obs: PolicyObservation) -> np.ndarray:
        """Return an action chunk, shape (chunk_horizon, action_dim), float32, in [-1, 1]."""
        ...


def check_chunk(chunk: np.ndarray, spec: PolicySpec) -> np.ndarray:
    """Validate a backend's output: right shape, finite; clip tiny overshoots into [-1, 1]."""
    arr = np.asarray(chunk, dtype=np.float32)
    if arr.shape != (spec.chunk_horizon, spec.action_dim):
        raise ValueError(
            f"policy {spec.name!r} returned shape {arr.shape}, "
            f"expected ({spec.chunk_horizon}, {spec.action_dim})"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"policy {spec.name!r} returned NaN/inf actions")
    return np.clip(arr, -1.0, 1.0)
