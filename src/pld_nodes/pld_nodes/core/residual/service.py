"""The learner service loop without ROS: follow the episode store, train, emit weights.

``learner_node`` runs :class:`LearnerService.run` on a worker thread and only turns its
callbacks into ROS messages. The store is the learner's only input: the recorder commits each
episode atomically, the service re-opens the store read-only on every poll and ingests the
episodes committed since the last poll, so a learner restart rebuilds the exact replay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pld_nodes.core.config import ConfigError, require_finite
from pld_nodes.core.episode_store import EpisodeStore, EpisodeStoreError
from pld_nodes.core.residual.config import ResidualPolicyConfig, SACConfig, xi_at
from pld_nodes.core.residual.learner import ResidualLearner, layout_for
from pld_nodes.core.residual.replay import ONLINE, replay_role

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnerServiceConfig:
    store_path: str = ""
    checkpoint_dir: str = ""
    tensorboard_dir: str = ""
    """Empty = ``<checkpoint_dir>/tensorboard``."""
    poll_period_s: float = 2.0
    publish_every_updates: int = 50
    checkpoint_every_updates: int = 2000
    max_updates_per_transition: float = 1.0
    """Update-to-data cap: critic updates <= this x online transitions (0 = train nonstop).
    Keeps a learner that outruns the robot from overfitting the replay."""
    train_chunk_updates: int = 10
    xi_start: float = 0.5
    xi_ramp_steps: int = 0
    log_period_s: float = 10.0
    seed: int = 0
    device: str = "cpu"
    torch_threads: int = 1

    def __post_init__(self) -> None:
        if not self.store_path or not self.checkpoint_dir:
            raise ConfigError("store_path and checkpoint_dir are required")
        for name in ("publish_every_updates", "checkpoint_every_updates", "train_chunk_updates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        require_finite("poll_period_s", self.poll_period_s, low=0.0, low_inclusive=False)
        require_finite("max_updates_per_transition", self.max_updates_per_transition, low=0.0)
        require_finite("log_period_s", self.log_period_s, low=0.0, low_inclusive=False)


class StoreFollower:
    """Yields episodes committed to a store since the previous poll (missing store = none)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.next_index = 0

    def poll(self) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
        if not Path(self.path).exists():
            return []
        try:
            store = EpisodeStore.open(self.path, mode="r")
        except EpisodeStoreError as exc:
            _LOG.warning("cannot read the episode store yet: %s", exc)
            return []
        out = []
        for i in range(self.next_index, store.n_episodes):
            out.append((store.get_episode(i), store.episode_attrs(i)))
        self.next_index = store.n_episodes
        return out


WeightsCallback = Callable[[int, float, bytes], None]
StatusCallback = Callable[[dict[str, Any]], None]


class LearnerService:
    def __init__(
        self,
        config: LearnerServiceConfig,
        policy_config: ResidualPolicyConfig,
        sac_config: SACConfig,
        on_weights: WeightsCallback,
        on_status: StatusCallback | None = None,
    ) -> None:
        self.config, self.policy_config, self.sac_config = config, policy_config, sac_config
        self.on_weights, self.on_status = on_weights, on_status
        self.follower = StoreFollower(config.store_path)
        self.learner: ResidualLearner | None = None
        self.stop_event = threading.Event()
        self.online_transitions = 0
        self.recent_success: deque[bool] = deque(maxlen=50)
        self.metrics: dict[str, float] = {}
        self._writer: Any = None
        self._last_log = 0.0
        self._updates_at_log = 0
        self._t_log = time.monotonic()
        self._resumed_state: dict[str, Any] | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def xi(self) -> float:
        c = self.config
        return xi_at(self.online_transitions, self.policy_config.xi, c.xi_start, c.xi_ramp_steps)

    def _ingest(self) -> int:
        added = 0
        for data, attrs in self.follower.poll():
            if self.learner is None:
                self.learner = ResidualLearner(
                    layout_for(data, self.policy_config),
                    self.policy_config,
                    self.sac_config,
                    seed=self.config.seed,
                    device=self.config.device,
                )
                self._resumed_state = self.learner.resume(self.config.checkpoint_dir)
            n = self.learner.add_episode(data, attrs)
            added += n
            if replay_role(attrs) == ONLINE:
                self.online_transitions += n
                if attrs.get("mode") in ("residual", "hybrid"):
                    self.recent_success.append(bool(attrs.get("success")))
        return added

    def _publish(self) -> None:
        assert self.learner is not None
        xi = self.xi
        version, blob = self.learner.next_weights(xi)
        self.on_weights(version, xi, blob)

    def _checkpoint(self) -> None:
        assert self.learner is not None
        self.learner.save(self.config.checkpoint_dir, {"xi": self.xi})

    def _update_budget(self) -> int:
        assert self.learner is not None
        ratio = self.config.max_updates_per_transition
        if ratio == 0.0:
            return self.config.train_chunk_updates
        allowed = int(ratio * self.online_transitions) - self.learner.agent.critic_updates
        return max(0, min(allowed, self.config.train_chunk_updates))

    def _log(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._t_log < self.config.log_period_s:
            return
        assert self.learner is not None
        updates = self.learner.agent.critic_updates
        rate = (updates - self._updates_at_log) / max(now - self._t_log, 1e-9)
        self._t_log, self._updates_at_log = now, updates
        success = float(np.mean(self.recent_success)) if self.recent_success else float("nan")
        status = {
            "version": self.learner.version,
            "critic_updates": updates,
            "updates_per_s": rate,
            "offline_transitions": len(self.learner.offline),
            "online_transitions": self.online_transitions,
            "episodes": self.follower.next_index,
            "recent_success": success,
            "xi": self.xi,
            **self.metrics,
        }
        _LOG.info(
            "learner v%d: %d updates (%.0f/s), replay %d offline + %d online, success %.2f, "
            "Q %.3f, xi %.2f",
            status["version"],
            updates,
            rate,
            status["offline_transitions"],
            status["online_transitions"],
            success,
            self.metrics.get("critic/q_mean", float("nan")),
            status["xi"],
        )
        writer = self._tensorboard()
        for key, value in status.items():
            if isinstance(value, int | float) and np.isfinite(value):
                writer.add_scalar(key, value, updates)
        writer.flush()
        if self.on_status is not None:
            self.on_status(status)

    def _tensorboard(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            logdir = self.config.tensorboard_dir or str(
                Path(self.config.checkpoint_dir) / "tensorboard"
            )
            self._writer = SummaryWriter(logdir)
        return self._writer

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        """Until ``stop_event``: poll, warm-start once, train, publish, checkpoint."""
        import torch

        torch.set_num_threads(self.config.torch_threads)
        c = self.config
        published_initial = False
        last_poll = -np.inf
        try:
            while not self.stop_event.is_set():
                if time.monotonic() - last_poll >= c.poll_period_s:
                    self._ingest()
                    last_poll = time.monotonic()
                learner = self.learner
                if learner is None or not learner.ready():
                    self.stop_event.wait(c.poll_period_s)
                    continue
                if learner.pretrained_steps < self.sac_config.calql_steps and len(learner.offline):
                    self._pretrain(learner)
                    continue
                if not published_initial:
                    self._publish()
                    published_initial = True
                budget = self._update_budget()
                if budget == 0:
                    self._log()
                    self.stop_event.wait(min(c.poll_period_s, 0.5))
                    continue
                before = learner.agent.critic_updates
                self.metrics |= learner.train(budget, self.xi)
                after = learner.agent.critic_updates
                if after // c.publish_every_updates > before // c.publish_every_updates:
                    self._publish()
                if after // c.checkpoint_every_updates > before // c.checkpoint_every_updates:
                    self._checkpoint()
                self._log()
        finally:
            if self.learner is not None and self.learner.agent.critic_updates:
                self._checkpoint()
            if self._writer is not None:
                self._writer.close()

    def _pretrain(self, learner: ResidualLearner) -> None:
        remaining = self.sac_config.calql_steps - learner.pretrained_steps
        chunk = min(self.config.train_chunk_updates, remaining)
        self.metrics |= learner.pretrain(chunk, self.xi)
        if learner.pretrained_steps >= self.sac_config.calql_steps:
            _LOG.info("Cal-QL warm start done (%d steps)", learner.pretrained_steps)
            self._checkpoint()
