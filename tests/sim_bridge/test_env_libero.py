"""PandaTaskEnv on a real LIBERO task: official init states, instruction, Gymnasium contract."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim_bridge.envs import PandaTaskEnv, make_env

TASK = "libero_object/0"


@pytest.fixture(scope="module")
def libero_env() -> Iterator[PandaTaskEnv]:
    env = make_env(TASK, render=False, seed=0, settle_steps=0)
    yield env
    env.close()


def test_env_checker_passes_with_images() -> None:
    env = make_env(TASK, seed=0, image_size=(32, 32), render_mode="rgb_array")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(env.unwrapped)
        obs, _ = env.reset(seed=0)
        assert obs["images"]["agentview"].shape == (32, 32, 3)
    finally:
        env.close()


def test_instruction_and_layout(libero_env: PandaTaskEnv) -> None:
    obs, info = libero_env.reset(seed=0)
    expected = "pick up the alphabet soup and place it in the basket"
    assert libero_env.instruction == info["instruction"] == expected
    assert libero_env.num_init_states == 50
    assert {"alphabet_soup_1", "basket_1"} <= set(libero_env.object_names)
    assert obs["object_state"].shape == (7 * len(libero_env.object_names),)
    assert libero_env.max_steps == 280
    assert info["success"] is False


def test_official_init_state_is_loaded_exactly(libero_env: PandaTaskEnv) -> None:
    _, info = libero_env.reset(options={"init_state_id": 7})
    assert info["init_state_id"] == 7
    official = libero_env.robosuite_env.sim.get_state().flatten()
    states = libero_env._live().init_states
    assert states is not None
    np.testing.assert_array_equal(official, states[7])


def test_init_state_follows_seed(libero_env: PandaTaskEnv) -> None:
    ids = [libero_env.reset(seed=s)[1]["init_state_id"] for s in (1, 2, 1)]
    assert ids[0] == ids[2]
    obs_a, _ = libero_env.reset(seed=3)
    obs_b, _ = libero_env.reset(seed=3)
    np.testing.assert_array_equal(obs_a["object_state"], obs_b["object_state"])


@pytest.mark.parametrize("bad", [-1, 50, 2.5, "3"])
def test_invalid_init_state_id_raises(libero_env: PandaTaskEnv, bad: object) -> None:
    with pytest.raises(ValueError, match="init_state_id"):
        libero_env.reset(options={"init_state_id": bad})


def test_settle_steps_leave_objects_at_rest() -> None:
    env = make_env(TASK, render=False, seed=0, settle_steps=10)
    try:
        obs, _ = env.reset(options={"init_state_id": 0})
        before = obs["object_state"].copy()
        obs, reward, terminated, truncated, _ = env.step(
            np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32)
        )
        assert (reward, terminated, truncated) == (0.0, False, False)
        moved = np.abs(obs["object_state"] - before).reshape(-1, 7)[:, :3].max()
        assert moved < 2e-3
    finally:
        env.close()
