"""HotSwapResidual: zero until weights arrive, atomic swaps, bad weights never replace good."""

import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pld_nodes.core.residual.checkpoint import WeightsError, actor_to_bytes, sha256_hex
from pld_nodes.core.residual.config import ResidualPolicyConfig
from pld_nodes.core.residual.inference import HotSwapResidual, StampPairer
from pld_nodes.core.residual.networks import ObservationLayout, ResidualActor

LAYOUT = ObservationLayout(state_dim=23)
PROPRIO, OBJECTS, BASE = np.zeros(16), np.zeros(7), np.full(7, 0.25)


def weights(version: int, bias: float = 0.1, xi: float = 0.5) -> bytes:
    actor = ResidualActor(LAYOUT, ResidualPolicyConfig())
    with torch.no_grad():
        actor.trunk[-1].bias[:7] = bias  # a constant, recognisable residual tanh(bias)
    return actor_to_bytes(actor, version, xi)


def test_zero_residual_before_any_weights() -> None:
    r = HotSwapResidual()
    out = r.infer(PROPRIO, OBJECTS, BASE)
    assert out.version == 0 and np.array_equal(out.residual, np.zeros(7, np.float32))


def test_swap_installs_newer_versions_and_refuses_older_or_equal() -> None:
    r = HotSwapResidual()
    assert r.load(weights(1, 0.1)) == 1
    assert r.infer(PROPRIO, OBJECTS, BASE).residual == pytest.approx(np.tanh(0.1))
    assert r.load(weights(3, 0.2)) == 3
    with pytest.raises(WeightsError, match="not newer"):
        r.load(weights(2, 0.9))
    out = r.infer(PROPRIO, OBJECTS, BASE)
    assert out.version == 3 and out.residual == pytest.approx(np.tanh(0.2))
    assert (r.swaps, r.rejected) == (2, 1)


def test_sha_mismatch_and_version_mismatch_are_rejected_and_old_weights_keep_running() -> None:
    r = HotSwapResidual()
    good = weights(1, 0.1)
    r.load(good, sha256_hex(good), 1)
    bad = bytearray(weights(2, 0.3))
    bad[-5] ^= 0xFF  # flip a weight byte: still parses, but the hash catches it
    with pytest.raises(WeightsError, match="sha256"):
        r.load(bytes(bad), sha256_hex(weights(2, 0.3)), 2)
    with pytest.raises(WeightsError, match="message says version"):
        r.load(weights(5), "", 4)
    with pytest.raises(WeightsError):
        r.load(b"\x00" * 100)
    assert r.version == 1 and r.infer(PROPRIO, OBJECTS, BASE).residual == pytest.approx(
        np.tanh(0.1)
    )
    assert r.rejected == 3 and r.last_error


def test_input_config_mismatch_is_rejected() -> None:
    r = HotSwapResidual(use_object_state=False)
    with pytest.raises(WeightsError, match="object_state"):
        r.load(weights(1))


@settings(max_examples=100, deadline=None)
@given(
    base=arrays(
        np.float64, st.integers(0, 9), elements=st.floats(allow_nan=True, allow_infinity=True)
    ),
)
def test_malformed_base_actions_raise_instead_of_producing_output(base) -> None:
    r = HotSwapResidual()
    r.load(weights(1))
    if base.shape == (7,) and np.all(np.isfinite(base)) and np.all(np.abs(base) <= 1.0):
        assert r.infer(PROPRIO, OBJECTS, base).residual.shape == (7,)
    else:
        with pytest.raises(ValueError):
            r.infer(PROPRIO, OBJECTS, base)


def test_nan_observation_and_missing_object_state_raise() -> None:
    r = HotSwapResidual()
    with pytest.raises(ValueError, match="NaN"):
        r.infer(np.full(16, np.nan), OBJECTS, BASE)
    with pytest.raises(ValueError, match="object_state"):
        r.infer(PROPRIO, None, BASE)


def test_concurrent_swaps_never_expose_a_half_installed_actor() -> None:
    r = HotSwapResidual()
    r.load(weights(1, 0.1))
    allowed = {round(float(np.tanh(b)), 5) for b in (0.1, 0.2, 0.3, 0.4)}
    stop = threading.Event()
    seen: list[float] = []

    def control() -> None:
        while not stop.is_set():
            out = r.infer(PROPRIO, OBJECTS, BASE).residual
            assert np.all(out == out[0])
            seen.append(round(float(out[0]), 5))

    t = threading.Thread(target=control)
    t.start()
    for v, b in ((2, 0.2), (3, 0.3), (4, 0.4)):
        r.load(weights(v, b))
    stop.set()
    t.join()
    assert set(seen) <= allowed and r.version == 4


def test_stochastic_mode_samples_around_the_mean() -> None:
    r = HotSwapResidual(stochastic=True, seed=1)
    r.load(weights(1, 0.0))
    outs = np.stack([r.infer(PROPRIO, OBJECTS, BASE).residual for _ in range(200)])
    assert abs(outs.mean()) < 0.05 and outs.std() > 0.1


def test_stamp_pairer_matches_either_arrival_order_and_bounds_memory() -> None:
    p = StampPairer(max_pending=3)
    assert p.add_observation(1, "o1") is None
    assert p.add_base_action(1, "a1") == "o1"
    assert p.add_base_action(2, "a2") is None
    assert p.add_observation(2, "o2") == "a2"
    for s in range(10, 16):
        p.add_observation(s, s)
    assert p.dropped == 3
