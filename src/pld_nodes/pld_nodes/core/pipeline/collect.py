"""Stage 2, Collect: hybrid rollouts with the stage-1 specialist into the episode store.

Two backends write the same store layout and attributes (``mode``, ``t_base``, ``alpha``,
``success``, ``seed``, ...): the ROS graph (``pld_bringup``: arbiter + recorder nodes) and
:func:`collect_inprocess` here. Both are resumable: what is already in the store counts, and
episode k of the stage always uses env seed ``seed + k`` and T_base drawn from ``(seed, k)``,
exactly as ``core.arbiter.Arbiter`` draws it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pld_nodes.core.arbiter import Arbiter, ArbiterConfig
from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.residual.checkpoint import LoadedActor, actor_from_bytes
from pld_nodes.core.residual.rollout import (
    ChunkedBase,
    StateSpec,
    deterministic_residual,
    run_episode,
)

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectRequest:
    """What a collector must do: run hybrid episodes until the store holds ``successes``
    successful ones, or ``episode_limit`` episodes in all."""

    task: str
    base_checkpoint: str
    residual_weights: Path
    store: Path
    successes: int
    episode_limit: int
    alpha: float
    t_max: int
    seed: int
    execute_steps: int
    mode: str = "hybrid"


class Collector(Protocol):
    def __call__(self, request: CollectRequest, progress: Callable[[int, int], None]) -> None: ...


@dataclass(frozen=True)
class CollectStatus:
    episodes: int
    successes: int
    steps: int

    def done(self, request: CollectRequest) -> bool:
        return self.successes >= request.successes or self.episodes >= request.episode_limit


def collect_status(store_path: Path) -> CollectStatus:
    """Episodes, successes and steps already in a collection store (zero if absent)."""
    if not (Path(store_path) / "zarr.json").exists():
        return CollectStatus(0, 0, 0)
    store = EpisodeStore.open(store_path)
    return CollectStatus(store.n_episodes, len(store.episodes(success=True)), store.n_steps)


def t_base_for(request: CollectRequest, k: int) -> int:
    """Episode k's takeover step: the arbiter node's own draw for (seed, k)."""
    r = request
    cfg = ArbiterConfig(mode=r.mode, alpha=r.alpha, t_max=r.t_max, seed=r.seed)
    return Arbiter(cfg).start_episode(k).t_base


def collect_inprocess(request: CollectRequest, progress: Callable[[int, int], None]) -> None:
    """Run hybrid episodes with the core rollout code and append them to the store."""
    from pld_nodes.core.residual.trainer import TrainConfig, load_base_policy, make_task_env

    cfg = TrainConfig(task=request.task, base_checkpoint=request.base_checkpoint)
    loaded = actor_from_bytes(Path(request.residual_weights).read_bytes())
    residual = deterministic_residual(loaded.actor)
    spec = StateSpec(loaded.actor.config.use_proprio, loaded.actor.config.use_object_state)
    path = Path(request.store)
    store = (
        EpisodeStore.open(path, mode="a")
        if (path / "zarr.json").exists()
        else EpisodeStore.create(path)
    )
    env = make_task_env(cfg)
    try:
        base = ChunkedBase(load_base_policy(cfg), request.execute_steps)
        status = collect_status(path)
        while not status.done(request):
            k = status.episodes
            t_base = t_base_for(request, k)
            data, attrs = run_episode(
                env, base, residual, seed=request.seed + k, xi=loaded.xi, takeover_step=t_base,
                state_spec=spec,
            )  # fmt: skip
            data["step"] = np.arange(len(data["action"]), dtype=np.int32)
            attrs |= _collect_attrs(request, k, loaded)
            store.add_episode(data, attrs)
            status = CollectStatus(
                k + 1, status.successes + int(attrs["success"]), status.steps + attrs["length"]
            )
            progress(status.episodes, status.successes)
    finally:
        env.close()


def _collect_attrs(request: CollectRequest, k: int, loaded: LoadedActor) -> dict[str, Any]:
    return {
        "stage": "collect",
        "mode": request.mode,
        "alpha": request.alpha,
        "episode_index": k,
        "label_source": "sim",
        "residual_versions": [int(loaded.version)],
    }
