"""SimBridge core on a real MuJoCo Lift env (no ROS): seeds, validation, hold, episode ends."""

import math

import numpy as np
import pytest

from pld_nodes.core.actions import InvalidAction
from sim_bridge.bridge import EpisodeState, SimBridge, SimBridgeConfig
from sim_bridge.envs import make_env


@pytest.fixture(scope="module")
def env():
    env = make_env("lift", render=False, camera_names=(), max_steps=400)
    yield env
    env.close()


def make(env, **kwargs) -> SimBridge:
    return SimBridge(env, SimBridgeConfig(camera_names=(), **kwargs))


def test_seed_sequence_is_deterministic(env) -> None:
    bridge = make(env, seed=10)
    first = bridge.reset()["object_state"].copy()
    assert bridge.snapshot.seed == 10 and bridge.snapshot.index == 0
    bridge.reset()
    assert bridge.snapshot.seed == 11
    again = bridge.reset(seed=10)["object_state"]
    np.testing.assert_array_equal(first, again)
    assert bridge.snapshot.state is EpisodeState.RUNNING


def test_refused_commands_are_counted_and_not_used(env) -> None:
    bridge = make(env)
    bridge.reset()
    for bad in ([math.nan] * 7, [0.0] * 6, [2.0] + [0.0] * 6):
        with pytest.raises(InvalidAction):
            bridge.submit_command(bad, now_s=0.0)
    assert bridge.rejected_commands == 3
    action, held = bridge.next_action(now_s=0.0)
    assert held and np.all(action[:6] == 0.0)


def test_stale_command_becomes_a_hold_that_keeps_the_gripper(env) -> None:
    bridge = make(env, command_timeout_s=0.2)
    bridge.reset()
    bridge.submit_command([0.5, 0, 0, 0, 0, 0, 1.0], now_s=1.0)
    action, held = bridge.next_action(now_s=1.1)
    assert not held and action[0] == 0.5
    bridge.step(action)
    action, held = bridge.next_action(now_s=1.5)
    assert held and action[0] == 0.0 and action[6] == 1.0  # still closed


def test_hold_keeps_the_end_effector_still(env) -> None:
    bridge = make(env)
    obs = bridge.reset(seed=3)
    start = obs["proprio"][:3].copy()
    for _ in range(20):
        action, _held = bridge.next_action(now_s=100.0)
        obs = bridge.step(action).obs
    assert np.linalg.norm(obs["proprio"][:3] - start) < 0.01


def test_timeout_ends_the_episode_and_stepping_after_end_is_refused(env) -> None:
    bridge = make(env, max_steps=5)
    bridge.reset()
    for _ in range(5):
        result = bridge.step(*bridge.next_action(0.0))
    assert result.ended and bridge.snapshot.reason == "timeout"
    assert bridge.snapshot.step == 5
    with pytest.raises(RuntimeError, match="episode state is ended"):
        bridge.step(*bridge.next_action(0.0))
    assert math.isclose(bridge.sim_time_s, 6 / 20.0)  # the reset counts as one period
    bridge.reset()
    assert math.isclose(bridge.sim_time_s, 7 / 20.0)  # new stamps, never a repeated one


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"step_mode": "fast"}, "step_mode must be one of"),
        ({"control_rate_hz": 0.0}, "control_rate_hz must be in"),
        ({"max_steps": 0}, "max_steps must be >= 1"),
        ({"camera_names": ("a", "a")}, "duplicates"),
    ],
)
def test_config_is_validated(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        SimBridgeConfig(**kwargs)
