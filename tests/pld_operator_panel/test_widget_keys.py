"""The widget alone (no ROS): keys, disabled buttons, e-stop confirmation, colours."""

from __future__ import annotations

import queue

import pytest

from pld_operator_panel.model import (
    AWAITING_LABEL,
    RUNNING,
    DiagStatus,
    Estopped,
    GraphNodes,
    HealthRules,
    Lifecycle,
    PanelModel,
    ServiceResult,
    StepRecord,
)
from pld_operator_panel.qt import Qt
from pld_operator_panel.widget import LEVEL_COLOURS, PHASE_COLOURS, OperatorPanel


class FakeActions:
    """Records what the panel asked of the stack."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        return lambda *args: self.calls.append(name + "".join(f":{a}" for a in args))


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def setup(qtbot, tmp_path):
    actions, events, clock = FakeActions(), queue.SimpleQueue(), Clock()
    answers: list[bool] = []
    questions: list[str] = []

    def confirm(_parent, _title, text) -> bool:
        questions.append(text)
        return answers.pop(0)

    model = PanelModel(HealthRules(expected_nodes=("episode_manager",), stale_after_s=3.0))
    panel = OperatorPanel(actions, events, store_path=str(tmp_path / "none.zarr"),
                          confirm=confirm, model=model, clock=clock)  # fmt: skip
    qtbot.addWidget(panel)
    panel.show()

    def feed(*evts) -> None:
        for e in evts:
            events.put(e)
        panel.refresh()

    yield panel, actions, feed, clock, answers, questions
    panel.shutdown()


def test_keys_act_only_when_the_state_allows(setup, qtbot) -> None:
    panel, actions, feed, *_ = setup
    feed(Estopped(False), Lifecycle(2, RUNNING, mode="base"))
    qtbot.keyClick(panel, Qt.Key_S)  # no label while running
    qtbot.keyClick(panel, Qt.Key_N)  # no start while running
    assert actions.calls == []
    assert "not allowed while running" in panel.status_line.text()
    qtbot.keyClick(panel, Qt.Key_E)
    qtbot.keyClick(panel, Qt.Key_P)
    assert actions.calls == ["stop", "pause"]
    feed(Lifecycle(2, AWAITING_LABEL, mode="base"))
    assert panel.buttons[panel_action("SUCCESS")].isEnabled()
    assert not panel.buttons[panel_action("START")].isEnabled()
    qtbot.keyClick(panel, Qt.Key_F)
    qtbot.keyClick(panel, Qt.Key_D)  # plain D is not discard: only Ctrl+D
    qtbot.keyClick(panel, Qt.Key_D, Qt.ControlModifier)
    assert actions.calls[2:] == ["label:False", "discard"]


def panel_action(name: str):
    from pld_operator_panel.model import Action

    return Action[name]


def test_escape_is_an_estop_even_while_typing_an_instruction(setup, qtbot) -> None:
    panel, actions, feed, *_ = setup
    feed(Estopped(False), Lifecycle(0, "idle"))
    qtbot.mouseClick(panel.instruction_edit, Qt.LeftButton)
    panel.instruction_edit.setFocus()
    qtbot.keyClicks(panel.instruction_edit, "pick sf")  # letters type, they do not label
    assert panel.instruction_edit.text() == "pick sf" and actions.calls == []
    qtbot.keyClick(panel.instruction_edit, Qt.Key_Return)
    qtbot.keyClick(panel.instruction_edit, Qt.Key_Escape)
    qtbot.keyClick(panel, Qt.Key_Space)
    assert actions.calls == ["publish_instruction:pick sf", "estop", "estop"]


def test_estop_reset_asks_and_a_no_keeps_it_latched(setup, qtbot) -> None:
    panel, actions, feed, _clock, answers, questions = setup
    feed(Estopped(True), Lifecycle(1, "committed"))
    assert "E-STOP LATCHED" in panel.estop_banner.text()
    assert not panel.buttons[panel_action("START")].isEnabled()
    answers.append(False)
    qtbot.mouseClick(panel.estop_reset_button, Qt.LeftButton)
    assert questions and actions.calls == []
    assert "stays latched" in panel.status_line.text()
    answers.append(True)
    qtbot.mouseClick(panel.estop_reset_button, Qt.LeftButton)
    assert actions.calls == ["estop_reset"]
    feed(ServiceResult("e-stop reset", False, "refused for a test"))
    assert "REFUSED" in panel.status_line.text()


def test_phase_colour_and_stale_rows_turn_red(setup) -> None:
    panel, _actions, feed, clock, *_ = setup
    feed(Lifecycle(5, RUNNING, mode="hybrid"),
         StepRecord(5, 30, "hybrid", 20, 1), GraphNodes(frozenset({"episode_manager"})),
         DiagStatus("recorder: episode store", "recorder", 0, "ok"))  # fmt: skip
    assert "RESIDUAL" in panel.phase_label.text()
    assert PHASE_COLOURS["residual"] in panel.phase_label.styleSheet()
    assert "T_base 20" in panel.episode_label.text() and "step 30" in panel.episode_label.text()

    def colour(name: str) -> str:
        t = panel.health_table
        row = next(i for i in range(t.rowCount()) if t.item(i, 0).text() == name)
        return t.item(row, 0).background().color().name()

    ok, red = LEVEL_COLOURS[0][0], LEVEL_COLOURS[3][0]
    assert colour("recorder") == ok and colour("episode_manager") == ok
    clock.t += 3.5
    feed(GraphNodes(frozenset()))
    assert colour("recorder") == red and colour("episode_manager") == red
