"""Arbiter rules: hybrid takeover at T_base ~ U{0..floor(a*T)}, holds on bad input, modes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pld_nodes.core.arbiter import PHASE_HOLD, Arbiter, ArbiterConfig, sample_t_base
from pld_nodes.core.config import ConfigError
from pld_nodes.core.residual.replay import PHASE_BASE, PHASE_RESIDUAL

BASE = np.array([0.1, -0.2, 0.3, 0.0, 0.0, 0.0, -1.0])
RES = np.array([1.0, 1.0, -1.0, 0.5, 0.0, 0.0, 1.0])


def test_t_base_is_uniform_over_its_support() -> None:
    """Chi-square goodness of fit over 20k draws; support is exactly {0..floor(alpha T)}."""
    from scipy import stats

    rng = np.random.default_rng(0)
    draws = np.array([sample_t_base(0.6, 50, rng) for _ in range(20_000)])
    assert draws.min() == 0 and draws.max() == 30
    counts = np.bincount(draws, minlength=31)
    assert stats.chisquare(counts).pvalue > 0.001


def test_per_episode_t_base_is_reproducible_and_varies() -> None:
    arb = Arbiter(ArbiterConfig(alpha=0.6, t_max=200, seed=7))
    plans = [arb.start_episode(i).t_base for i in range(50)]
    again = Arbiter(ArbiterConfig(alpha=0.6, t_max=200, seed=7))
    assert plans == [again.start_episode(i).t_base for i in range(50)]
    assert len(set(plans)) > 25 and max(plans) <= 120


def test_hybrid_phase_switches_exactly_at_t_base() -> None:
    arb = Arbiter(ArbiterConfig(mode="hybrid", alpha=0.6, t_max=100, xi=0.5, seed=1))
    plan = arb.start_episode(3)
    for step in range(100):
        d = arb.decide(step, BASE, RES)
        if step < plan.t_base:
            assert d.phase == PHASE_BASE and np.array_equal(d.action, BASE)
        else:
            assert d.phase == PHASE_RESIDUAL
            np.testing.assert_allclose(d.action, np.clip(BASE + 0.5 * RES, -1, 1))


def test_base_mode_never_waits_for_the_residual_and_residual_mode_starts_at_zero() -> None:
    arb = Arbiter(ArbiterConfig(mode="base"))
    arb.start_episode(0)
    assert arb.decide(0, BASE, None).phase == PHASE_BASE
    arb.request_mode("residual")
    assert arb.plan.mode == "base"  # the running episode keeps its mode
    assert arb.start_episode(1).t_base == 0
    assert arb.decide(0, BASE, RES).phase == PHASE_RESIDUAL
    assert arb.decide(1, BASE, None).reason == "no fresh residual action"


def test_hold_mode_and_no_episode_hold() -> None:
    arb = Arbiter(ArbiterConfig(mode="hold"))
    assert arb.decide(0, BASE, RES).reason == "no episode running"
    arb.start_episode(0)
    d = arb.decide(0, BASE, RES)
    assert d.is_hold and d.reason == "mode hold" and np.all(d.action[:6] == 0)


def test_hold_keeps_the_last_commanded_gripper() -> None:
    arb = Arbiter(ArbiterConfig(mode="base"))
    arb.start_episode(0)
    closing = BASE.copy()
    closing[6] = 1.0
    arb.decide(0, closing, None)
    d = arb.decide(1, None, None)
    assert d.is_hold and d.action[6] == 1.0 and np.all(d.action[:6] == 0)


junk = st.one_of(
    st.none(),
    arrays(np.float64, st.integers(0, 9), elements=st.floats(allow_nan=True, allow_infinity=True)),
)


@settings(max_examples=300, deadline=None)
@given(
    base=junk,
    residual=junk,
    step=st.integers(0, 300),
    mode=st.sampled_from(["base", "residual", "hybrid", "hold"]),
)
def test_any_input_gives_a_valid_command_or_a_hold(base, residual, step, mode) -> None:
    arb = Arbiter(ArbiterConfig(mode=mode, t_max=200))
    arb.start_episode(0)
    d = arb.decide(step, base, residual)
    assert d.action.shape == (7,) and np.all(np.isfinite(d.action))
    assert np.all(np.abs(d.action) <= 1.0)

    def ok(a) -> bool:
        return (
            a is not None
            and a.shape == (7,)
            and bool(np.all(np.isfinite(a)) and np.all(np.abs(a) <= 1))
        )

    needs_residual = mode == "residual" or (mode == "hybrid" and step >= arb.plan.t_base)
    expect_send = mode != "hold" and ok(base) and (ok(residual) or not needs_residual)
    assert d.is_hold == (not expect_send)
    if d.is_hold:
        assert d.reason and d.phase == PHASE_HOLD


def test_config_and_mode_validation() -> None:
    with pytest.raises(ConfigError):
        ArbiterConfig(mode="auto")
    with pytest.raises(ConfigError):
        ArbiterConfig(alpha=1.5)
    with pytest.raises(ValueError):
        Arbiter(ArbiterConfig()).request_mode("turbo")
