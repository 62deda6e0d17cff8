"""Replay for the residual learner: episodes -> transitions, ring buffers, RLPD sampling.

Episodes use the episode-store step keys (``STEP_KEYS`` below): the RL replay takes only the
steps from the takeover on (``phase == PHASE_RESIDUAL``), because before it the base policy acted
alone and the residual's action had no effect; base-only episodes (all ``PHASE_BASE``) feed the
offline buffer whole. Reward is the sparse success signal recorded per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

PHASE_BASE, PHASE_RESIDUAL = 0, 1
STEP_KEYS = {
    "proprio": "robot proprio (PROPRIO_LAYOUT)",
    "object_state": "privileged object poses (sim)",
    "base_action": "a_b, the base policy's action",
    "residual_action": "a_delta in [-1, 1] (0 during the base-only prefix)",
    "action": "executed action clip(a_b + xi * a_delta, -1, 1)",
    "phase": "PHASE_BASE before the takeover, PHASE_RESIDUAL after",
    "reward": "1.0 on the step that reached success, else 0.0",
}
IMAGE_PREFIX = "images/"


def residual_state(
    proprio: np.ndarray, object_state: np.ndarray | None, use_proprio: bool, use_object: bool
) -> np.ndarray:
    """The residual's flat state input, float32, along the last axis: one observation (S,) or a
    whole episode (T, S). The one definition shared by replay, sim rollouts and residual_node."""
    parts = []
    if use_proprio:
        parts.append(np.asarray(proprio, np.float32))
    if use_object:
        if object_state is None:
            raise ValueError("the residual reads object_state but the observation has none")
        parts.append(np.asarray(object_state, np.float32))
    if not parts:
        return np.zeros((*np.shape(proprio)[:-1], 0), np.float32)
    return np.concatenate(parts, axis=-1)


def state_vector(episode: Mapping[str, np.ndarray], use_proprio: bool, use_object: bool):
    """(T, S) float32: the residual's flat state input from an episode's step arrays."""
    if use_object and "object_state" not in episode:
        raise KeyError("the residual reads object_state but the episode has none")
    return residual_state(episode["proprio"], episode.get("object_state"), use_proprio, use_object)


def takeover_index(phase: np.ndarray) -> int:
    """First step acted on by the residual; ``len(phase)`` if the base acted alone throughout."""
    idx = np.flatnonzero(np.asarray(phase) == PHASE_RESIDUAL)
    return int(idx[0]) if len(idx) else len(phase)


def monte_carlo_returns(reward: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted return-to-go per step (Cal-QL's lower bound for Q)."""
    out = np.zeros(len(reward), np.float32)
    acc = 0.0
    for t in range(len(reward) - 1, -1, -1):
        acc = float(reward[t]) + gamma * acc
        out[t] = acc
    return out


def episode_transitions(
    episode: Mapping[str, np.ndarray],
    *,
    gamma: float,
    use_proprio: bool = True,
    use_object_state: bool = True,
    image_keys: tuple[str, ...] = (),
    start: int = 0,
    success: bool | None = None,
) -> dict[str, np.ndarray]:
    """Transitions (t -> t+1) for steps ``start`` .. end of one episode.

    A successful episode's last step is terminal (``done = 1``); a timed-out episode's last step
    has no recorded next observation and is dropped (bootstrapping it from a guess would bias Q).
    ``success`` defaults to "the last reward is positive".
    """
    reward = np.asarray(episode["reward"], np.float32)
    length = len(reward)
    success = bool(reward[-1] > 0) if success is None else success
    state = state_vector(episode, use_proprio, use_object_state)
    base = np.asarray(episode["base_action"], np.float32)
    action = np.asarray(episode["action"], np.float32)
    images = {k: np.asarray(episode[IMAGE_PREFIX + k]) for k in image_keys}
    mc = monte_carlo_returns(reward, gamma)
    last = length if success else length - 1  # exclusive end of usable steps
    idx = np.arange(start, last)
    nxt = np.minimum(idx + 1, length - 1)
    done = np.zeros(len(idx), np.float32)
    if success and len(idx):
        done[-1] = 1.0
    out = {
        "state": state[idx],
        "base": base[idx],
        "action": action[idx],
        "reward": reward[idx],
        "next_state": state[nxt],
        "next_base": base[nxt],
        "done": done,
        "mc_return": mc[idx],
    }
    for k, img in images.items():
        out[IMAGE_PREFIX + k] = img[idx]
        out["next_" + IMAGE_PREFIX + k] = img[nxt]
    return out


class TransitionBuffer:
    """Fixed-capacity ring buffer of transitions (arrays allocated on the first insert)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._data: dict[str, np.ndarray] = {}
        self._next = 0
        self.size = 0
        self.total_added = 0

    def __len__(self) -> int:
        return self.size

    def add(self, transitions: Mapping[str, np.ndarray]) -> None:
        n = len(next(iter(transitions.values()))) if transitions else 0
        if n == 0:
            return
        if not self._data:
            self._data = {
                k: np.zeros((self.capacity, *np.asarray(v).shape[1:]), np.asarray(v).dtype)
                for k, v in transitions.items()
            }
        if set(transitions) != set(self._data):
            raise KeyError(f"transition keys {sorted(transitions)} != {sorted(self._data)}")
        if n > self.capacity:  # keep the newest
            transitions = {k: np.asarray(v)[-self.capacity :] for k, v in transitions.items()}
            n = self.capacity
        pos = (self._next + np.arange(n)) % self.capacity
        for k, v in transitions.items():
            self._data[k][pos] = v
        self._next = int((self._next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        self.total_added += n

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if self.size == 0:
            raise ValueError("cannot sample from an empty buffer")
        idx = rng.integers(0, self.size, size=n)
        return {k: v[idx] for k, v in self._data.items()}

    def column(self, key: str) -> np.ndarray:
        return self._data[key][: self.size]


@dataclass(frozen=True)
class BatchComposition:
    offline: int
    online: int


def batch_composition(
    batch_size: int, offline_fraction: float, offline_size: int, online_size: int
) -> BatchComposition:
    """RLPD symmetric sampling: ``offline_fraction`` of the batch from the offline buffer, the
    rest online; if one buffer is empty the other fills the whole batch."""
    if offline_size == 0 and online_size == 0:
        raise ValueError("both replay buffers are empty")
    if offline_size == 0:
        return BatchComposition(0, batch_size)
    if online_size == 0:
        return BatchComposition(batch_size, 0)
    n_off = round(batch_size * offline_fraction)
    return BatchComposition(n_off, batch_size - n_off)


def sample_mixed(
    offline: TransitionBuffer,
    online: TransitionBuffer,
    batch_size: int,
    offline_fraction: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    comp = batch_composition(batch_size, offline_fraction, len(offline), len(online))
    parts = []
    if comp.offline:
        parts.append(offline.sample(comp.offline, rng))
    if comp.online:
        parts.append(online.sample(comp.online, rng))
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


OFFLINE, ONLINE = "offline", "online"


def replay_role(attrs: Mapping[str, object]) -> str | None:
    """Which replay an episode feeds (PLD data routing), from its store attributes.

    - successful base-only *probe* episodes (``mode == "base"``, ``stage`` "probe" or unset):
      the offline buffer (RLPD's prior data, Cal-QL's pretraining set);
    - failed probe episodes: none (the paper collects n *successful* base rollouts);
    - base-only warm-up episodes (``stage == "warmup"``) and every residual/hybrid episode:
      the online buffer (hybrid episodes from the takeover on, see :func:`rl_start`);
    - anything else (eval runs, unknown modes, discarded or unlabelled episodes): none.
    """
    if attrs.get("discarded") or attrs.get("stage") == "eval":
        return None
    mode, stage, success = attrs.get("mode"), attrs.get("stage"), attrs.get("success")
    if success is None:
        return None
    if mode == "base":
        if stage == "warmup":
            return ONLINE
        return OFFLINE if success else None
    if mode in ("residual", "hybrid"):
        return ONLINE
    return None


def rl_start(episode: Mapping[str, np.ndarray], attrs: Mapping[str, object]) -> int:
    """First step the RL replay keeps: the takeover step for hybrid episodes, else 0."""
    if attrs.get("mode") == "hybrid":
        return takeover_index(episode["phase"])
    return 0
