"""Episode lifecycle state machine: allowed paths, refusals, auto labels."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pld_nodes.core.episode_lifecycle import (
    AWAITING_LABEL,
    COMMITTED,
    DISCARDED,
    IDLE,
    RUNNING,
    EpisodeLifecycle,
    LifecycleError,
)


def test_sim_episode_is_auto_labelled() -> None:
    lc = EpisodeLifecycle(auto_label=True)
    ep = lc.start("hybrid", seed=3)
    assert ep.index == 0 and lc.state == "resetting"
    assert lc.reset_done(True, seed=3).state == RUNNING
    done = lc.env_ended(True, "success", 41)
    assert (done.state, done.success, done.label_source, done.steps) == (COMMITTED, True, "sim", 41)
    timeout = (lc.start("hybrid"), lc.reset_done(True), lc.env_ended(False, "timeout", 200))[-1]
    assert (timeout.index, timeout.success, timeout.label_source) == (1, False, "timeout")
    assert [e.index for e in lc.history] == [0, 1]


def test_operator_labels_or_discards() -> None:
    lc = EpisodeLifecycle(auto_label=False)
    lc.start("residual")
    lc.reset_done(True)
    assert lc.stop().state == AWAITING_LABEL
    with pytest.raises(LifecycleError):
        lc.start("base")  # the episode still needs its label
    assert lc.label(False, "operator").state == COMMITTED
    with pytest.raises(LifecycleError):
        lc.label(True, "operator")  # a late double click cannot relabel
    lc.start("base")
    lc.reset_done(True)
    assert lc.discard().state == DISCARDED


def test_failed_reset_returns_to_idle() -> None:
    lc = EpisodeLifecycle()
    lc.start("hybrid")
    rec = lc.reset_done(False, message="robot in reflex")
    assert lc.state == IDLE and rec.reason == "reset_failed"
    assert lc.start("hybrid").index == 1


ACTIONS = [
    "start",
    "reset_ok",
    "reset_fail",
    "env_success",
    "env_timeout",
    "stop",
    "label",
    "discard",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ACTIONS), max_size=30), st.booleans())
def test_any_request_sequence_keeps_the_machine_consistent(actions, auto) -> None:
    lc = EpisodeLifecycle(auto_label=auto)
    calls = {
        "start": lambda: lc.start("hybrid"),
        "reset_ok": lambda: lc.reset_done(True),
        "reset_fail": lambda: lc.reset_done(False),
        "env_success": lambda: lc.env_ended(True, "success", 5),
        "env_timeout": lambda: lc.env_ended(False, "timeout", 200),
        "stop": lc.stop,
        "label": lambda: lc.label(True, "operator"),
        "discard": lc.discard,
    }
    finals: list[int] = []
    for action in actions:
        before = lc.current
        try:
            calls[action]()
        except LifecycleError:
            assert lc.current == before  # a refused request changes nothing
        final = lc.current is not None and lc.current.state in (COMMITTED, DISCARDED)
        if final and (not finals or finals[-1] != lc.current.index):
            finals.append(lc.current.index)
    assert finals == sorted(set(finals))  # each episode ends once, in order
    for rec in lc.history:
        if rec.state == COMMITTED:
            assert rec.label_source
