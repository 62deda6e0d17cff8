"""Residual actor/critic invariants: zero-init = base action, bounded correction."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pld_nodes.core.residual.config import ResidualPolicyConfig
from pld_nodes.core.residual.networks import (
    ObservationLayout,
    ResidualActor,
    executed_action,
)

LAYOUT = ObservationLayout(state_dim=23)
finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
unit = st.floats(-1.0, 1.0, allow_nan=False, width=32)


@settings(max_examples=50, deadline=None)
@given(
    state=arrays(np.float32, (5, 23), elements=finite),
    base=arrays(np.float32, (5, 7), elements=unit),
    xi=st.floats(0.01, 2.0),
)
def test_zero_initialised_residual_reproduces_the_base_action_exactly(state, base, xi) -> None:
    actor = ResidualActor(LAYOUT, ResidualPolicyConfig(xi=xi))
    residual, _ = actor(torch.from_numpy(state), {}, torch.from_numpy(base), deterministic=True)
    assert torch.count_nonzero(residual) == 0
    executed = executed_action(torch.from_numpy(base), residual, xi)
    assert torch.equal(executed, torch.from_numpy(base))


def test_initial_exploration_noise_matches_init_log_std() -> None:
    cfg = ResidualPolicyConfig(init_log_std=-1.5)
    actor = ResidualActor(LAYOUT, cfg)
    mean, log_std = actor.distribution_params(torch.randn(64, 23), {}, torch.zeros(64, 7))
    assert torch.allclose(mean, torch.zeros_like(mean))
    assert torch.allclose(log_std, torch.full_like(log_std, -1.5), atol=1e-5)


@settings(max_examples=200, deadline=None)
@given(
    base=arrays(np.float32, 7, elements=unit),
    residual=arrays(np.float32, 7, elements=unit),
    xi=st.floats(0.0, 2.0, width=32),
)
def test_executed_action_stays_in_range_and_within_xi_of_the_base(base, residual, xi) -> None:
    out = executed_action(torch.from_numpy(base), torch.from_numpy(residual), xi).numpy()
    assert np.all(out >= -1.0) and np.all(out <= 1.0)
    assert np.all(np.abs(out - base) <= xi * np.abs(residual) + 1e-6)


@settings(max_examples=30, deadline=None)
@given(state=arrays(np.float32, (8, 23), elements=finite))
def test_sampled_residuals_are_bounded_with_finite_log_probs(state) -> None:
    actor = ResidualActor(LAYOUT, ResidualPolicyConfig(init_log_std=0.5, log_std_max=1.0))
    for p in actor.trunk.parameters():  # a trained-looking actor, not the zero init
        torch.nn.init.normal_(p, std=0.5)
    residual, logp = actor(torch.from_numpy(state), {}, torch.zeros(8, 7))
    assert torch.all(residual.abs() <= 1.0)
    assert torch.all(torch.isfinite(logp))


def test_log_prob_matches_change_of_variables() -> None:
    """The stable tanh-Jacobian form equals log N(u) - sum log(1 - tanh(u)^2)."""
    torch.manual_seed(0)
    actor = ResidualActor(LAYOUT, ResidualPolicyConfig(init_log_std=-0.5, log_std_max=1.0))
    state, base = torch.randn(4, 23), torch.zeros(4, 7)
    torch.manual_seed(1)
    _, logp = actor(state, {}, base)
    torch.manual_seed(1)
    mean, log_std = actor.distribution_params(state, {}, base)
    u = mean + log_std.exp() * torch.randn_like(mean)
    normal = torch.distributions.Normal(mean, log_std.exp())
    expected = (normal.log_prob(u) - torch.log1p(-(torch.tanh(u) ** 2))).sum(-1)
    assert torch.allclose(logp, expected, atol=1e-4)


def test_image_inputs_go_through_the_cnn() -> None:
    cfg = ResidualPolicyConfig(image_keys=("wrist",), image_size=(32, 32))
    layout = ObservationLayout(state_dim=16, image_keys=("wrist",), image_size=(32, 32))
    actor = ResidualActor(layout, cfg)
    images = {"wrist": torch.randint(0, 255, (3, 32, 32, 3), dtype=torch.uint8)}
    residual, logp = actor(torch.randn(3, 16), images, torch.zeros(3, 7))
    assert residual.shape == (3, 7) and logp.shape == (3,)


def test_layout_round_trips_through_json_types() -> None:
    layout = ObservationLayout(state_dim=23, image_keys=("a",), image_size=(32, 48))
    assert ObservationLayout.from_dict(layout.to_dict()) == layout
    with pytest.raises(ValueError):
        ObservationLayout(state_dim=0)
