import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pld_nodes.core.actions import ACTION_DIM, InvalidAction, hold_action, validate_action


def test_valid_action_passes_unchanged() -> None:
    action = [0.1, -0.2, 0.3, 0.0, 0.0, 1.0, -1.0]
    np.testing.assert_array_equal(validate_action(action), action)


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ([0.0] * 6, "wrong shape"),
        ([[0.0] * 7], "wrong shape"),
        ([0.0] * 6 + [float("nan")], "non-finite"),
        ([float("inf")] + [0.0] * 6, "non-finite"),
        ([1.5] + [0.0] * 6, "out of range"),
    ],
)
def test_bad_actions_are_refused_with_a_reason(action: list, reason: str) -> None:
    with pytest.raises(InvalidAction) as info:
        validate_action(action)
    assert info.value.reason == reason


@given(
    arrays(np.float64, st.integers(0, 10), elements=st.floats(allow_nan=True, allow_infinity=True))
)
def test_validate_never_returns_anything_unsafe(values: np.ndarray) -> None:
    try:
        out = validate_action(values)
    except InvalidAction:
        return
    assert out.shape == (ACTION_DIM,)
    assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1.0)


def test_hold_keeps_gripper() -> None:
    np.testing.assert_array_equal(hold_action(1.0), [0, 0, 0, 0, 0, 0, 1.0])
