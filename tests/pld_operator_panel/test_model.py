"""PanelModel: what the operator may do in each state, health staleness, diagnostics parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pld_operator_panel.model import (
    AWAITING_LABEL,
    COMMITTED,
    RUNNING,
    Action,
    DiagStatus,
    Estopped,
    GraphNodes,
    HealthRules,
    Level,
    Lifecycle,
    PanelModel,
    StepRecord,
    format_bytes,
)


def lifecycle(state: str, index: int = 3, step: int = 0) -> Lifecycle:
    return Lifecycle(episode_index=index, state=state, step=step, mode="hybrid")


@pytest.mark.parametrize(
    ("state", "allowed"),
    [
        ("idle", {Action.START, Action.RESET_SCENE}),
        ("resetting", set()),
        (RUNNING, {Action.STOP, Action.PAUSE, Action.DISCARD}),
        (AWAITING_LABEL, {Action.SUCCESS, Action.FAILURE, Action.DISCARD}),
        (COMMITTED, {Action.START, Action.RESET_SCENE}),
        ("discarded", {Action.START, Action.RESET_SCENE}),
    ],
)
def test_actions_follow_the_lifecycle(state: str, allowed: set[Action]) -> None:
    m = PanelModel()
    m.apply(lifecycle(state), 0.0)
    m.apply(Estopped(False), 0.0)
    got = {a for a in Action if m.allowed(a)[0]}
    assert got == allowed | {Action.ESTOP}
    assert all(m.allowed(a)[1] for a in set(Action) - got)  # every refusal says why


def test_estop_blocks_starting_and_enables_only_its_reset() -> None:
    m = PanelModel()
    m.apply(lifecycle(COMMITTED), 0.0)
    m.apply(Estopped(True), 0.0)
    assert not m.allowed(Action.START)[0] and "e-stop" in m.allowed(Action.START)[1]
    assert not m.allowed(Action.RESET_SCENE)[0]
    assert m.allowed(Action.ESTOP_RESET)[0] and m.allowed(Action.ESTOP)[0]
    m.apply(Estopped(False), 1.0)
    assert m.allowed(Action.START)[0] and not m.allowed(Action.ESTOP_RESET)[0]


def test_step_phase_and_t_base_come_from_the_running_episode_only() -> None:
    m = PanelModel()
    m.apply(lifecycle(RUNNING, index=4), 0.0)
    m.apply(StepRecord(episode_index=3, step=90, mode="base", t_base=5, phase=1), 0.0)
    assert m.step == 0 and m.phase == "" and m.t_base is None  # last episode's record
    m.apply(StepRecord(episode_index=4, step=12, mode="hybrid", t_base=10, phase=1), 0.0)
    assert (m.step, m.phase, m.t_base) == (12, "residual", 10)
    m.apply(StepRecord(episode_index=4, step=13, mode="hybrid", t_base=10, phase=2), 0.0)
    assert m.phase == "hold"
    m.apply(lifecycle(AWAITING_LABEL, index=4, step=13), 0.0)
    assert m.phase == "" and m.step == 13


def test_safety_learner_and_recorder_diagnostics_are_parsed() -> None:
    m = PanelModel()
    values = {"commands": "9", "estop": "e-stop service", "intervention: ee speed": "2",
              "intervention: estop": "7"}  # fmt: skip
    m.apply(DiagStatus("safety_monitor: safety", "safety_monitor", 2, "E-STOP", values), 0.0)
    m.apply(DiagStatus("learner: residual learner", "learner", 0, "v4", {"version": "4"}), 0.0)
    m.apply(DiagStatus("residual: residual policy", "residual", 0, "v3", {"version": "3"}), 0.0)
    m.apply(DiagStatus("recorder: episode store", "recorder", 0, "", {"store": "d/e.zarr"}), 0.0)
    assert m.interventions == {"ee speed": 2, "estop": 7}
    assert m.estop_reason == "e-stop service"
    assert (m.learner_version, m.residual_version, m.recorder_store) == (4, 3, "d/e.zarr")
    rows = {r.name: r for r in m.health(0.5)}
    assert rows["safety_monitor"].level is Level.ERROR  # e-stopped: the monitor says ERROR


def test_health_rows_go_stale_against_the_clock() -> None:
    m = PanelModel(HealthRules(expected_nodes=("episode_manager", "arbiter"), stale_after_s=3.0))
    assert {r.name: r.level for r in m.health(0.0)} == {
        "episode_manager": Level.STALE,  # nothing discovered yet: not shown as fine
        "arbiter": Level.STALE,
    }
    m.apply(GraphNodes(frozenset({"episode_manager", "arbiter", "x"})), 0.0)
    m.apply(DiagStatus("recorder: episode store", "recorder", 0, "ok"), 10.0)
    topic = "health_monitor: /robot/joint_states"
    m.apply(DiagStatus(topic, "/robot/joint_states", 3, "stale: no message"), 10.0)
    rows = {r.name: r.level for r in m.health(12.9)}
    assert rows["recorder"] is Level.OK and rows["health_monitor"] is Level.OK
    assert rows["topic /robot/joint_states"] is Level.STALE  # the monitor's own verdict
    assert rows["episode_manager"] is Level.OK
    rows = {r.name: r.level for r in m.health(13.1)}
    assert rows["recorder"] is Level.STALE and rows["health_monitor"] is Level.STALE
    m.apply(GraphNodes(frozenset({"arbiter"})), 14.0)
    assert {r.name: r.level for r in m.health(14.0)}["episode_manager"] is Level.STALE


def test_bad_rules_and_byte_formatting() -> None:
    with pytest.raises(ValueError, match="stale_after_s"):
        HealthRules(stale_after_s=0.0)
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 1024**3) == "3.0 GiB"


STATES = ("idle", "resetting", RUNNING, AWAITING_LABEL, COMMITTED, "discarded")
events = st.one_of(
    st.builds(lifecycle, st.sampled_from(STATES), st.integers(0, 3), st.integers(0, 50)),
    st.builds(Estopped, st.booleans()),
    st.builds(StepRecord, st.integers(0, 3), st.integers(0, 50), st.just("hybrid"),
              st.integers(0, 50), st.integers(0, 2)),
)  # fmt: skip


@given(st.lists(events, max_size=30))
def test_no_sequence_of_messages_allows_a_label_and_a_start_together(seq: list) -> None:
    m = PanelModel()
    for t, event in enumerate(seq):
        m.apply(event, float(t))
        allowed = {a for a in Action if m.allowed(a)[0]}
        assert Action.ESTOP in allowed  # the e-stop is never disabled
        assert not ({Action.SUCCESS, Action.FAILURE} & allowed and Action.START in allowed)
        assert not (m.estopped and Action.START in allowed)
        assert m.step >= 0
