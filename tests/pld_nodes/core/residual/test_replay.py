"""Replay routing (PLD data rules), transitions, ring buffer and RLPD batch composition."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pld_nodes.core.residual.replay import (
    OFFLINE,
    ONLINE,
    TransitionBuffer,
    batch_composition,
    episode_transitions,
    monte_carlo_returns,
    replay_role,
    rl_start,
    sample_mixed,
    takeover_index,
)


def test_hybrid_episode_feeds_only_post_takeover_steps(episode_factory) -> None:
    ep = episode_factory(30, success=True, takeover=12)
    attrs = {"mode": "hybrid", "success": True}
    assert replay_role(attrs) == ONLINE
    assert rl_start(ep, attrs) == takeover_index(ep["phase"]) == 12
    trans = episode_transitions(ep, gamma=0.99, start=rl_start(ep, attrs))
    assert len(trans["reward"]) == 18
    np.testing.assert_array_equal(trans["action"], ep["action"][12:])
    np.testing.assert_array_equal(trans["base"], ep["base_action"][12:])


def test_routing_rules() -> None:
    assert replay_role({"mode": "base", "success": True}) == OFFLINE
    assert replay_role({"mode": "base", "success": True, "stage": "probe"}) == OFFLINE
    assert replay_role({"mode": "base", "success": False, "stage": "probe"}) is None
    assert replay_role({"mode": "base", "success": False, "stage": "warmup"}) == ONLINE
    assert replay_role({"mode": "residual", "success": False}) == ONLINE
    assert replay_role({"mode": "hybrid", "success": True, "discarded": True}) is None
    assert replay_role({"mode": "residual", "success": True, "stage": "eval"}) is None
    assert replay_role({"mode": "hybrid"}) is None  # unlabelled: never guess a reward
    assert replay_role({"mode": "mystery", "success": True}) is None


def test_success_ends_in_a_terminal_transition(episode_factory) -> None:
    ep = episode_factory(10, success=True)
    t = episode_transitions(ep, gamma=0.9)
    assert len(t["reward"]) == 10
    assert t["done"].tolist() == [0.0] * 9 + [1.0]
    assert t["reward"][-1] == 1.0
    np.testing.assert_array_equal(t["next_state"][:-1], t["state"][1:])
    np.testing.assert_array_equal(t["next_base"][:-1], t["base"][1:])
    np.testing.assert_allclose(t["mc_return"], 0.9 ** np.arange(9, -1, -1), rtol=1e-6)


def test_timeout_drops_the_last_step_instead_of_bootstrapping_a_guess(episode_factory) -> None:
    ep = episode_factory(10, success=False)
    t = episode_transitions(ep, gamma=0.99)
    assert len(t["reward"]) == 9 and not t["done"].any()
    np.testing.assert_array_equal(t["next_state"][-1][:16], ep["proprio"][9])


def test_state_concatenates_proprio_then_object_state(episode_factory) -> None:
    ep = episode_factory(5, success=True)
    t = episode_transitions(ep, gamma=0.99)
    np.testing.assert_array_equal(
        t["state"], np.concatenate([ep["proprio"], ep["object_state"]], 1)
    )
    only = episode_transitions(ep, gamma=0.99, use_object_state=False)
    assert only["state"].shape == (5, 16)


def test_monte_carlo_returns() -> None:
    np.testing.assert_allclose(monte_carlo_returns(np.array([0, 0, 1.0]), 0.5), [0.25, 0.5, 1.0])


def test_ring_buffer_keeps_the_newest() -> None:
    buf = TransitionBuffer(5)
    buf.add({"x": np.arange(3)})
    buf.add({"x": np.arange(3, 7)})
    assert len(buf) == 5 and buf.total_added == 7
    assert sorted(buf.column("x").tolist()) == [2, 3, 4, 5, 6]
    buf.add({"x": np.arange(100, 112)})
    assert sorted(buf.column("x").tolist()) == [107, 108, 109, 110, 111]
    with pytest.raises(KeyError):
        buf.add({"y": np.arange(2)})


@settings(max_examples=100, deadline=None)
@given(
    batch=st.integers(1, 512),
    fraction=st.floats(0.0, 1.0),
    offline=st.integers(0, 10),
    online=st.integers(0, 10),
)
def test_batch_composition_follows_the_configured_fraction(batch, fraction, offline, online):
    if offline == 0 and online == 0:
        with pytest.raises(ValueError):
            batch_composition(batch, fraction, offline, online)
        return
    comp = batch_composition(batch, fraction, offline, online)
    assert comp.offline + comp.online == batch
    if offline and online:
        assert comp.offline == round(batch * fraction)
    else:
        assert comp.offline == (batch if offline else 0)


def test_rlpd_symmetric_sampling_draws_half_from_each_buffer() -> None:
    rng = np.random.default_rng(0)
    offline, online = TransitionBuffer(100), TransitionBuffer(100)
    offline.add({"src": np.zeros(50)})
    online.add({"src": np.ones(80)})
    batch = sample_mixed(offline, online, 256, 0.5, rng)
    assert len(batch["src"]) == 256 and batch["src"].sum() == 128
    assert sample_mixed(offline, online, 256, 0.25, rng)["src"].sum() == 192
