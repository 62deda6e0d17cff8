"""LearnerService: follows a real Zarr store, warm-starts, trains, versions, resumes."""

import threading
import time

import pytest

from pld_nodes.core.config import ConfigError
from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.residual.checkpoint import actor_from_bytes, list_learner_checkpoints
from pld_nodes.core.residual.config import ResidualPolicyConfig, SACConfig
from pld_nodes.core.residual.service import LearnerService, LearnerServiceConfig

from .conftest import make_episode


def store_with(path, n_offline: int, n_online: int) -> EpisodeStore:
    store = EpisodeStore.create(path)
    for i in range(n_offline):
        store.add_episode(make_episode(20, success=True, seed=i), {"mode": "base", "success": True})
    for i in range(n_online):
        ep = make_episode(30, success=i % 2 == 0, takeover=10, seed=100 + i)
        store.add_episode(ep, {"mode": "hybrid", "success": i % 2 == 0})
    return store


class Harness:
    def __init__(self, tmp_path, **overrides) -> None:
        cfg = {
            "store_path": str(tmp_path / "store.zarr"),
            "checkpoint_dir": str(tmp_path / "ckpt"),
            "poll_period_s": 0.05,
            "publish_every_updates": 5,
            "checkpoint_every_updates": 20,
            "max_updates_per_transition": 0.0,
            "train_chunk_updates": 5,
            "log_period_s": 0.2,
        } | overrides
        self.weights: list[tuple[int, float, bytes]] = []
        self.status: list[dict] = []
        self.service = LearnerService(
            LearnerServiceConfig(**cfg),
            ResidualPolicyConfig(),
            SACConfig(batch_size=16, calql_steps=6, calql_actions=2),
            lambda v, xi, blob: self.weights.append((v, xi, blob)),
            self.status.append,
        )
        self.thread = threading.Thread(target=self.service.run)

    def __enter__(self):
        self.thread.start()
        return self

    def wait(self, predicate, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            assert self.thread.is_alive(), "learner thread died"
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.service.stop_event.set()
        self.thread.join(timeout=30)


def test_warm_start_then_versions_published_and_new_episodes_ingested(tmp_path) -> None:
    store = store_with(tmp_path / "store.zarr", n_offline=3, n_online=2)
    with Harness(tmp_path) as h:
        h.wait(lambda: len(h.weights) >= 3)
        learner = h.service.learner
        assert learner.pretrained_steps == 6  # Cal-QL ran before the first publish
        assert (
            len(learner.offline) == 3 * 20 and len(learner.online) == 20 + 19
        )  # prefix excluded; timeout drops its last step
        store.add_episode(
            make_episode(30, success=True, takeover=5, seed=9), {"mode": "hybrid", "success": True}
        )
        h.wait(lambda: len(learner.online) == 20 + 19 + 25)
        h.wait(lambda: h.status and h.status[-1]["episodes"] == 6)
    versions = [v for v, _, _ in h.weights]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    loaded = actor_from_bytes(h.weights[-1][2])
    assert loaded.version == versions[-1] and loaded.xi == 0.5
    assert list_learner_checkpoints(tmp_path / "ckpt")  # final checkpoint on stop


def test_restart_resumes_versions_and_updates(tmp_path) -> None:
    store_with(tmp_path / "store.zarr", n_offline=2, n_online=2)
    with Harness(tmp_path) as h:
        h.wait(lambda: len(h.weights) >= 2)
    last_version = h.weights[-1][0]
    updates = h.service.learner.agent.critic_updates
    with Harness(tmp_path) as h2:
        h2.wait(lambda: len(h2.weights) >= 1)
        assert h2.service.learner.pretrained_steps == 6
    assert h2.weights[0][0] > last_version
    assert h2.service.learner.agent.critic_updates >= updates


def test_update_to_data_ratio_caps_training(tmp_path) -> None:
    store_with(tmp_path / "store.zarr", n_offline=2, n_online=1)  # 20 online transitions
    with Harness(tmp_path, max_updates_per_transition=0.5) as h:
        h.wait(lambda: h.status and h.status[-1]["critic_updates"] >= 10)
        time.sleep(0.5)
        assert h.service.learner.agent.critic_updates == 10


def test_waits_for_a_store_that_does_not_exist_yet(tmp_path) -> None:
    with Harness(tmp_path) as h:
        time.sleep(0.3)
        assert h.service.learner is None and h.thread.is_alive()
        store_with(tmp_path / "store.zarr", n_offline=2, n_online=1)
        h.wait(lambda: len(h.weights) >= 1)


def test_config_requires_paths() -> None:
    with pytest.raises(ConfigError):
        LearnerServiceConfig()
