"""The residual learner without ROS or a simulator: episodes in, updates, versioned weights out.

Used by ``learner_node`` (episodes from the Zarr store the recorder writes) and by the
single-process sim trainer (episodes straight from its rollouts, also written to a store), so
both run the same replay routing, normalisation, Cal-QL warm start and SAC updates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pld_nodes.core.residual.agent import ResidualSAC
from pld_nodes.core.residual.checkpoint import (
    actor_to_bytes,
    list_learner_checkpoints,
    load_learner_checkpoint,
    save_learner_checkpoint,
)
from pld_nodes.core.residual.config import ResidualPolicyConfig, SACConfig
from pld_nodes.core.residual.networks import ObservationLayout
from pld_nodes.core.residual.replay import (
    OFFLINE,
    TransitionBuffer,
    episode_transitions,
    replay_role,
    rl_start,
    sample_mixed,
    state_vector,
)

_LOG = logging.getLogger(__name__)


def layout_for(
    episode: Mapping[str, np.ndarray], config: ResidualPolicyConfig
) -> ObservationLayout:
    """The observation layout an episode implies for a residual with ``config``'s inputs."""
    state = state_vector(episode, config.use_proprio, config.use_object_state)
    image_size = tuple(config.image_size) if config.image_keys else (64, 64)
    return ObservationLayout(
        state_dim=state.shape[1],
        action_dim=int(np.asarray(episode["action"]).shape[1]),
        image_keys=tuple(config.image_keys),
        image_size=image_size,  # type: ignore[arg-type]
    )


class ResidualLearner:
    """Replay buffers + agent + weight versions. Not thread-safe: one owner thread."""

    def __init__(
        self,
        layout: ObservationLayout,
        policy_config: ResidualPolicyConfig,
        sac_config: SACConfig,
        *,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.layout, self.policy_config, self.config = layout, policy_config, sac_config
        self.agent = ResidualSAC(layout, policy_config, sac_config, device=device, seed=seed)
        self.offline = TransitionBuffer(sac_config.buffer_capacity)
        self.online = TransitionBuffer(sac_config.buffer_capacity)
        self.rng = np.random.default_rng(seed)
        self.version = 0
        self.stats_fixed = False
        self.pretrained_steps = 0
        self.episodes_seen = 0

    # ------------------------------------------------------------------ data
    def add_episode(self, episode: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> int:
        """Route one episode into the replay (see ``replay_role``); return transitions added."""
        self.episodes_seen += 1
        role = replay_role(attrs)
        if role is None:
            return 0
        c = self.policy_config
        trans = episode_transitions(
            episode,
            gamma=self.config.gamma,
            use_proprio=c.use_proprio,
            use_object_state=c.use_object_state,
            image_keys=tuple(c.image_keys),
            start=rl_start(episode, attrs),
            success=bool(attrs.get("success")),
        )
        if trans["state"].shape[1] != self.layout.state_dim:
            raise ValueError(
                f"episode state has {trans['state'].shape[1]} dims, the learner "
                f"{self.layout.state_dim}: a different task or observation config"
            )
        (self.offline if role == OFFLINE else self.online).add(trans)
        return len(trans["reward"])

    @property
    def replay_size(self) -> int:
        return len(self.offline) + len(self.online)

    def ready(self) -> bool:
        return self.replay_size >= self.config.batch_size

    def fix_normalisation(self) -> None:
        """Freeze state mean/std from everything in replay so far (once, before training)."""
        if self.stats_fixed:
            return
        cols = [b.column("state") for b in (self.offline, self.online) if len(b)]
        if not cols:
            raise RuntimeError("no data to compute normalisation statistics from")
        states = np.concatenate(cols)
        self.agent.set_state_stats(states.mean(0), states.std(0))
        self.stats_fixed = True

    def sample(self) -> dict[str, np.ndarray]:
        c = self.config
        return sample_mixed(self.offline, self.online, c.batch_size, c.offline_fraction, self.rng)

    # ------------------------------------------------------------------ training
    def pretrain(
        self, steps: int, xi: float, progress: Callable[[int, dict[str, float]], None] | None = None
    ) -> dict[str, float]:
        """Cal-QL critic warm start on the offline buffer."""
        if len(self.offline) == 0:
            _LOG.warning("no offline data: skipping the Cal-QL warm start")
            return {}
        self.fix_normalisation()
        metrics: dict[str, float] = {}
        for i in range(steps):
            batch = self.offline.sample(self.config.batch_size, self.rng)
            metrics = self.agent.pretrain_critic(batch, xi)
            self.pretrained_steps += 1
            if progress is not None:
                progress(i + 1, metrics)
        return metrics

    def train(self, updates: int, xi: float) -> dict[str, float]:
        """``updates`` critic updates (actor every ``critic_actor_ratio``); last metrics."""
        if not self.ready():
            return {}
        self.fix_normalisation()
        metrics: dict[str, float] = {}
        for _ in range(updates):
            metrics |= self.agent.update(self.sample(), xi)
        return metrics

    def act(self, state: np.ndarray, base: np.ndarray, deterministic: bool, images=None):
        return self.agent.act(state, base, images, deterministic=deterministic)

    # ------------------------------------------------------------------ weights / checkpoints
    def next_weights(self, xi: float) -> tuple[int, bytes]:
        """Bump the version and serialise the actor for publishing."""
        self.version += 1
        return self.version, actor_to_bytes(
            self.agent.deployed_actor,
            self.version,
            xi,
            {"critic_updates": self.agent.critic_updates},
        )

    def save(self, root: str, state: dict[str, Any], keep: int = 3) -> str:
        full = {
            **state,
            "version": self.version,
            "stats_fixed": self.stats_fixed,
            "pretrained_steps": self.pretrained_steps,
        }
        return str(save_learner_checkpoint(root, self.agent, full, keep))

    def resume(self, root: str) -> dict[str, Any] | None:
        """Load the newest checkpoint under ``root`` if there is one; return its state."""
        found = list_learner_checkpoints(root)
        if not found:
            return None
        state = load_learner_checkpoint(found[-1], self.agent)
        self.version = int(state.get("version", 0))
        self.stats_fixed = bool(state.get("stats_fixed", False))
        self.pretrained_steps = int(state.get("pretrained_steps", 0))
        _LOG.info("resumed learner from %s (version %d)", found[-1], self.version)
        return state
