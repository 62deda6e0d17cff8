import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pld_nodes.core.policy.chunking import ChunkExecutionConfig, ChunkExecutor, TimedChunk

DT = 0.05


def chunk(t0: float, value0: float, horizon: int = 8) -> TimedChunk:
    actions = (value0 + np.arange(horizon))[:, None] * np.ones((1, 7))
    return TimedChunk(t0, DT, actions.astype(np.float32))


def test_execute_k_of_h_then_hold() -> None:
    ex = ChunkExecutor(ChunkExecutionConfig(execute_steps=3))
    assert ex.add(chunk(1.0, 0.0), now=1.0)
    assert [ex.action_at(1.0 + k * DT)[0] for k in range(3)] == [0.0, 1.0, 2.0]
    assert ex.remaining_steps(1.0 + 2 * DT) == 1
    assert ex.action_at(1.0 + 3 * DT) is None  # step 3 is beyond k: a new chunk was due
    assert ex.remaining_steps(1.0 + 3 * DT) == 0


def test_jitter_maps_to_nearest_step() -> None:
    ex = ChunkExecutor(ChunkExecutionConfig(execute_steps=8))
    ex.add(chunk(0.0, 0.0), now=0.0)
    assert ex.action_at(2 * DT + 0.4 * DT)[0] == 2.0
    assert ex.action_at(3 * DT - 0.4 * DT)[0] == 3.0


def test_late_and_out_of_order_chunks_are_dropped() -> None:
    ex = ChunkExecutor(ChunkExecutionConfig(execute_steps=4))
    assert not ex.add(chunk(0.0, 0.0), now=4 * DT)  # every usable step already passed
    assert ex.add(chunk(1.0, 0.0), now=1.0)
    assert not ex.add(chunk(0.9, 5.0), now=1.0)  # older observation than the stored one
    assert ex.dropped_late_chunks == 2
    assert ex.action_at(1.0)[0] == 0.0


def test_newest_chunk_wins_without_ensembling() -> None:
    ex = ChunkExecutor(ChunkExecutionConfig(execute_steps=8))
    ex.add(chunk(0.0, 0.0), now=0.0)
    ex.add(chunk(2 * DT, 100.0), now=2 * DT)
    assert ex.action_at(3 * DT)[0] == 101.0


def test_temporal_ensembling_weights_older_chunks_more() -> None:
    ex = ChunkExecutor(ChunkExecutionConfig(execute_steps=8, ensemble_decay=0.5))
    ex.add(chunk(0.0, 0.0), now=0.0)
    ex.add(chunk(2 * DT, 100.0), now=2 * DT)
    w = np.exp(-0.5 * np.arange(2))
    want = (w[0] * 3.0 + w[1] * 101.0) / w.sum()
    assert ex.action_at(3 * DT)[0] == pytest.approx(want)


@given(
    t0=st.floats(0.0, 100.0),
    offset=st.floats(-1.0, 2.0),
    k=st.integers(1, 8),
    decay=st.one_of(st.none(), st.floats(0.0, 2.0)),
)
def test_never_returns_a_past_or_unexecutable_step(t0, offset, k, decay) -> None:
    ex = ChunkExecutor(ChunkExecutionConfig(execute_steps=k, ensemble_decay=decay))
    ex.add(chunk(t0, 0.0), now=t0)
    t = t0 + offset
    action = ex.action_at(t)
    step = round(offset / DT)
    if action is None:
        assert step < 0 or step >= k
    else:
        assert 0 <= step < k and action[0] == pytest.approx(step)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="execute_steps"):
        ChunkExecutionConfig(execute_steps=0)
    with pytest.raises(ValueError, match="ensemble_decay"):
        ChunkExecutionConfig(ensemble_decay=-1.0)
