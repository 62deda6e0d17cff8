"""Scripted experts reach the required success rates on the real simulator."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from sim_bridge.envs import PandaTaskEnv, make_env
from sim_bridge.envs.experts import expert_tasks, make_expert

EPISODES = 20
_LOG = logging.getLogger(__name__)
LIBERO_EXPERT_TASKS = [t for t in expert_tasks() if t.startswith("libero")]


def _success_rate(
    run_episode: Callable[..., bool],
    env: PandaTaskEnv,
    task: str,
    *,
    noise_std: float = 0.0,
    perturb_m: float = 0.0,
) -> float:
    expert = make_expert(
        task, noise_std=noise_std, perturb_m=perturb_m, seed=123, object_names=env.object_names
    )
    options = {} if env.num_init_states == 0 else None
    wins = []
    for episode in range(EPISODES):
        if options is None:  # LIBERO: cover 20 distinct official init states
            wins.append(run_episode(env, expert, seed=episode, init_state_id=episode))
        else:
            wins.append(run_episode(env, expert, seed=episode))
    return float(np.mean(wins))


def test_expert_registry_covers_lift_and_three_libero_tasks() -> None:
    assert "lift" in expert_tasks()
    assert len(LIBERO_EXPERT_TASKS) >= 3
    with pytest.raises(ValueError, match="no scripted expert"):
        make_expert("libero_goal/0")
    with pytest.raises(ValueError, match="noise_std"):
        make_expert("lift", noise_std=-0.1)


def test_expert_actions_are_valid_and_seeded(lift_env: PandaTaskEnv) -> None:
    obs, info = lift_env.reset(seed=0)
    actions = []
    for _ in range(2):
        expert = make_expert("lift", noise_std=0.3, seed=9)
        expert.reset(obs, info)
        actions.append(expert.act(obs))
    assert actions[0].shape == (7,) and actions[0].dtype == np.float32
    assert np.all(np.abs(actions[0]) <= 1.0)
    np.testing.assert_array_equal(actions[0], actions[1])


def test_expert_needs_privileged_state() -> None:
    expert = make_expert("lift")
    with pytest.raises(ValueError, match="privileged_state"):
        expert.reset({"proprio": np.zeros(16, np.float32)}, {})


def test_lift_expert_succeeds(lift_env: PandaTaskEnv, run_episode: Callable[..., bool]) -> None:
    assert _success_rate(run_episode, lift_env, "lift") >= 0.9


def test_lift_expert_with_noise_stays_good(
    lift_env: PandaTaskEnv, run_episode: Callable[..., bool]
) -> None:
    rate = _success_rate(run_episode, lift_env, "lift", noise_std=0.1, perturb_m=0.005)
    assert rate >= 0.8


@pytest.fixture(scope="module", params=LIBERO_EXPERT_TASKS)
def libero_task_env(request: pytest.FixtureRequest) -> Iterator[tuple[str, PandaTaskEnv]]:
    env = make_env(request.param, render=False, seed=0)
    yield request.param, env
    env.close()


def test_libero_expert_succeeds(
    libero_task_env: tuple[str, PandaTaskEnv], run_episode: Callable[..., bool]
) -> None:
    """>= 90 % over 20 official init states; in the default suite (~20 s per task)."""
    task, env = libero_task_env
    start = time.perf_counter()
    rate = _success_rate(run_episode, env, task)
    _LOG.info("%s: noise-free success %.2f in %.1fs", task, rate, time.perf_counter() - start)
    assert rate >= 0.9


@pytest.mark.slow
def test_libero_expert_with_noise_stays_good(
    libero_task_env: tuple[str, PandaTaskEnv], run_episode: Callable[..., bool]
) -> None:
    task, env = libero_task_env
    start = time.perf_counter()
    rate = _success_rate(run_episode, env, task, noise_std=0.1, perturb_m=0.005)
    _LOG.info("%s: noisy success %.2f in %.1fs", task, rate, time.perf_counter() - start)
    assert rate >= 0.8
