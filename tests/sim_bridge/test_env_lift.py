"""PandaTaskEnv on robosuite Lift: API contract, determinism, action handling, observations."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim_bridge.envs import (
    MAX_DELTA_POS_M,
    PROPRIO_LAYOUT,
    PandaTaskEnv,
    make_env,
)


def _rollout(env: PandaTaskEnv, seed: int, actions: np.ndarray) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    states = [np.concatenate([obs["proprio"], obs["object_state"]])]
    for action in actions:
        obs, *_ = env.step(action)
        states.append(np.concatenate([obs["proprio"], obs["object_state"]]))
    return np.stack(states)


def test_env_checker_passes_physics_only(lift_env: PandaTaskEnv) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded Box warnings are expected for poses
        check_env(lift_env.unwrapped, skip_render_check=True)


def test_env_checker_passes_with_rendering() -> None:
    env = make_env("lift", seed=0, image_size=(64, 64), render_mode="rgb_array")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(env.unwrapped)
        obs, _ = env.reset(seed=0)
        for cam in ("agentview", "robot0_eye_in_hand"):
            assert obs["images"][cam].shape == (64, 64, 3)
            assert obs["images"][cam].dtype == np.uint8
            assert obs["images"][cam].std() > 5.0  # a real picture, not a blank buffer
        assert env.render().shape == (256, 256, 3)
    finally:
        env.close()


def test_spaces_and_info(lift_env: PandaTaskEnv) -> None:
    assert lift_env.action_space.shape == (7,)
    assert lift_env.action_space.dtype == np.float32
    assert float(lift_env.action_space.low.min()) == -1.0
    assert float(lift_env.action_space.high.max()) == 1.0
    assert set(lift_env.observation_space.spaces) == {"proprio", "object_state"}
    obs, info = lift_env.reset(seed=0)
    assert lift_env.instruction == info["instruction"] == "lift the red cube"
    assert info["success"] is False
    assert obs["proprio"].shape == (16,) and obs["object_state"].shape == (7,)
    assert lift_env.object_names == ("cube",)


def test_proprio_matches_simulator_state(lift_env: PandaTaskEnv) -> None:
    obs, _ = lift_env.reset(seed=4)
    sim = lift_env.sim
    robot = lift_env.robosuite_env.robots[0]
    proprio = obs["proprio"]
    np.testing.assert_allclose(
        proprio[PROPRIO_LAYOUT["eef_pos"]], sim.data.site_xpos[robot.eef_site_id], atol=1e-6
    )
    quat = proprio[PROPRIO_LAYOUT["eef_quat_xyzw"]]
    assert math.isclose(float(np.linalg.norm(quat)), 1.0, abs_tol=1e-5)
    assert abs(quat[0]) > 0.95  # gripper points down: ~180 deg about x, scalar-last layout
    np.testing.assert_allclose(
        proprio[PROPRIO_LAYOUT["joint_pos"]], sim.data.qpos[robot._ref_joint_pos_indexes], 1e-6
    )
    fingers = proprio[PROPRIO_LAYOUT["gripper_qpos"]]
    assert fingers[0] > 0.01 and fingers[1] < -0.01  # open at reset
    cube = obs["object_state"][:3]
    assert 0.81 < cube[2] < 0.85  # resting on the 0.8 m table
    assert np.all(np.abs(cube[:2]) < 0.05)


def test_same_seed_same_trajectory(lift_env: PandaTaskEnv) -> None:
    actions = np.random.default_rng(7).uniform(-1, 1, size=(25, 7)).astype(np.float32)
    first = _rollout(lift_env, 11, actions)
    second = _rollout(lift_env, 11, actions)
    np.testing.assert_array_equal(first, second)
    other = _rollout(lift_env, 12, actions)
    assert not np.allclose(first[0], other[0])  # a different seed moves the cube


def test_config_seed_makes_fresh_envs_identical() -> None:
    envs = [make_env("lift", render=False, seed=5) for _ in range(2)]
    try:
        first = [env.reset()[0] for env in envs]
        np.testing.assert_array_equal(first[0]["object_state"], first[1]["object_state"])
        np.testing.assert_array_equal(first[0]["proprio"], first[1]["proprio"])
    finally:
        for env in envs:
            env.close()


@pytest.mark.parametrize(
    "action",
    [
        np.full(7, np.nan),
        np.array([0, 0, 0, 0, 0, np.inf, 0]),
        np.zeros(6),
        np.zeros(8),
        np.zeros((7, 1)),
    ],
    ids=["nan", "inf", "len6", "len8", "2d"],
)
def test_bad_actions_raise_value_error(lift_env: PandaTaskEnv, action: np.ndarray) -> None:
    lift_env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        lift_env.step(action)
    lift_env.step(np.zeros(7))  # env still usable after a rejected action


def test_out_of_range_actions_are_clipped(lift_env: PandaTaskEnv) -> None:
    big = np.array([[5.0, -7.0, 3.0, 0.0, 0.0, 0.0, 9.0]] * 5)
    clipped = np.clip(big, -1.0, 1.0)
    np.testing.assert_array_equal(_rollout(lift_env, 3, big), _rollout(lift_env, 3, clipped))


def test_action_moves_end_effector_in_commanded_direction(lift_env: PandaTaskEnv) -> None:
    obs, _ = lift_env.reset(seed=0)
    start = obs["proprio"][:3].copy()
    for _ in range(10):
        obs, *_ = lift_env.step(np.array([0, 0, 1, 0, 0, 0, -1], dtype=np.float32))
    moved = obs["proprio"][:3] - start
    assert moved[2] > 0.05  # rose by several cm
    assert moved[2] < 10 * MAX_DELTA_POS_M  # never faster than the documented per-step bound
    assert np.all(np.abs(moved[:2]) < 0.02)


def test_truncation_and_step_guard() -> None:
    env = make_env("lift", render=False, max_steps=3, seed=0)
    try:
        with pytest.raises(RuntimeError, match="reset"):
            env.step(np.zeros(7))
        env.reset()
        flags = [env.step(np.zeros(7))[3] for _ in range(3)]
        assert flags == [False, False, True]
        with pytest.raises(ValueError, match="init states"):
            env.reset(options={"init_state_id": 0})
        with pytest.raises(ValueError, match="unknown reset options"):
            env.reset(options={"bogus": 1})
    finally:
        env.close()
        env.close()  # idempotent


def test_unknown_camera_raises() -> None:
    with pytest.raises(ValueError, match="no_such_cam"):
        make_env("lift", camera_names=("no_such_cam",))
