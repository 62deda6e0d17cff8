"""The panel against a real running graph: sim, expert, arbiter, safety monitor, episode
manager (operator mode), recorder, health monitor. Keys and clicks go through the widget; the
effects are checked on the stack's own topics and on the episode store on disk."""

from __future__ import annotations

import os
import signal
import time

import pytest
from std_msgs.msg import Bool, String

from pld_bringup.graph import NodeLaunch
from pld_bringup.testing import RosProbe
from pld_interfaces.msg import Action as ActionMsg
from pld_nodes.ros import qos
from pld_operator_panel.model import AWAITING_LABEL, COMMITTED, RUNNING, Action, HealthRules, Level
from pld_operator_panel.qt import Qt
from pld_operator_panel.ros_bridge import SERVICES

pytestmark = pytest.mark.ros
WAIT_MS = 60_000  # generous: graph startup and the first episode on a loaded 2-core machine


def _ready(panel) -> bool:
    return (
        panel.model.estopped is False
        and panel.model.allowed(Action.START)[0]
        and all(panel.actions.service_ready(name) for _type, name in SERVICES)
    )


def _row_colour(panel, name: str) -> str | None:
    t = panel.health_table
    for i in range(t.rowCount()):
        if t.item(i, 0).text() == name:
            return t.item(i, 0).background().color().name()
    return None


def test_start_run_and_label_success_by_keyboard_grows_the_store(
    panel_graph, open_panel, qtbot
) -> None:
    panel = open_panel(panel_graph.domain, str(panel_graph.store))
    qtbot.waitUntil(lambda: _ready(panel), timeout=WAIT_MS)
    before = panel.model.store.n_episodes if panel.model.store else 0
    # until the sim's reset service is up the manager refuses a start: press N again
    deadline = time.monotonic() + WAIT_MS / 1000
    while panel.model.state not in (RUNNING, AWAITING_LABEL):
        assert time.monotonic() < deadline, (panel.status_line.text(), panel.model.lifecycle)
        if panel.model.allowed(Action.START)[0]:
            qtbot.keyClick(panel, Qt.Key_N)
        until = time.monotonic() + 3.0  # a refusal leaves START allowed: try again then
        while panel.model.allowed(Action.START)[0] and time.monotonic() < until:
            qtbot.wait(50)
        qtbot.wait(50)  # let Qt run the panel's refresh (this loop must never spin without it)
    qtbot.waitUntil(lambda: panel.model.step >= 5 or panel.model.state != RUNNING, timeout=30_000)
    if panel.model.state == RUNNING:  # the expert may already have lifted the cube
        qtbot.keyClick(panel, Qt.Key_E)  # end the episode: it waits for a label
    qtbot.waitUntil(lambda: panel.model.state == AWAITING_LABEL, timeout=30_000)
    assert panel.model.step >= 5  # the episode really ran
    assert panel.buttons[Action.SUCCESS].isEnabled() and not panel.buttons[Action.STOP].isEnabled()
    qtbot.keyClick(panel, Qt.Key_S)
    qtbot.waitUntil(lambda: panel.model.state == COMMITTED, timeout=30_000)
    lc = panel.model.lifecycle
    assert lc.success and lc.label_source == "operator"
    qtbot.waitUntil(
        lambda: panel.model.store is not None and panel.model.store.n_episodes == before + 1,
        timeout=30_000,
    )  # the recorder committed it to disk; the panel re-read the store
    stats = panel.model.store
    assert stats.disk_bytes > 0 and stats.n_steps >= 5
    assert any(m.mode == "base" and m.outcomes[-1] for m in stats.per_mode)


def test_estop_latches_holds_and_reset_needs_confirmation(panel_graph, open_panel, qtbot) -> None:
    answers: list[bool] = []
    panel = open_panel(panel_graph.domain, str(panel_graph.store),
                       confirm=lambda *_a: answers.pop(0))  # fmt: skip
    probe = RosProbe(panel_graph.domain, "panel_estop_probe")
    try:
        estopped = probe.subscribe(Bool, "/safety/estopped", qos.LATCHED)
        commands = probe.subscribe(ActionMsg, "/robot/command", qos.STATE)
        qtbot.waitUntil(lambda: _ready(panel), timeout=WAIT_MS)
        qtbot.mouseClick(panel.buttons[Action.START], Qt.LeftButton)
        qtbot.keyClick(panel, Qt.Key_Space)  # before the expert can finish: it never moves
        qtbot.waitUntil(lambda: panel.model.state in ("resetting", RUNNING), timeout=WAIT_MS)
        estopped.wait_for(lambda m: m.data, timeout_s=10.0)
        qtbot.waitUntil(lambda: "E-STOP LATCHED" in panel.estop_banner.text(), timeout=10_000)
        n = len(commands.items)
        commands.wait_for(lambda m: True, timeout_s=20.0, count=n + 5)
        assert all(m.source == "hold" for m in commands.items[n:])  # the monitor holds
        assert not panel.buttons[Action.START].isEnabled()

        answers.append(False)  # the operator declines: still latched
        qtbot.mouseClick(panel.estop_reset_button, Qt.LeftButton)
        time.sleep(1.0)
        assert estopped.items[-1].data and panel.model.estopped
        answers.append(True)
        qtbot.mouseClick(panel.estop_reset_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: panel.model.estopped is False, timeout=10_000)
        assert not estopped.items[-1].data and "e-stop clear" in panel.estop_banner.text()
        # leave the graph between episodes for the next test
        qtbot.waitUntil(lambda: panel.model.state != "resetting", timeout=WAIT_MS)
        if panel.model.state == RUNNING:
            qtbot.keyClick(panel, Qt.Key_E)  # end it: it waits for a label
            qtbot.waitUntil(lambda: panel.model.state == AWAITING_LABEL, timeout=30_000)
        if panel.model.allowed(Action.DISCARD)[0]:
            qtbot.keyClick(panel, Qt.Key_D, Qt.ControlModifier)
            qtbot.waitUntil(lambda: panel.model.state == "discarded", timeout=30_000)
    finally:
        probe.close()


def test_a_reopened_panel_shows_the_same_state(panel_graph, open_panel, qtbot) -> None:
    first = open_panel(panel_graph.domain, str(panel_graph.store))
    qtbot.waitUntil(lambda: first.model.lifecycle is not None and first.model.store is not None
                    and first.model.estopped is not None, timeout=WAIT_MS)  # fmt: skip
    seen = (first.model.lifecycle, first.model.estopped, first.model.store.n_episodes)
    first.close()
    second = open_panel(panel_graph.domain, str(panel_graph.store))
    qtbot.waitUntil(lambda: second.model.lifecycle is not None and second.model.store is not None
                    and second.model.estopped is not None, timeout=WAIT_MS)  # fmt: skip
    assert (second.model.lifecycle, second.model.estopped, second.model.store.n_episodes) == seen
    assert second.state_label.text() == first.state_label.text()


def test_stale_topic_and_killed_node_turn_red(launch_graph, ros_probe, open_panel, qtbot) -> None:
    topic = "/panel_test/heartbeat"
    monitor = NodeLaunch("health_monitor", "pld_nodes", "health_monitor_node", required=False,
                         overrides={"topics": [topic], "types": ["std_msgs/msg/String"],
                                    "min_rates_hz": [0.0], "stale_after_s": 1.0,
                                    "publish_period_s": 0.5})  # fmt: skip
    launcher = launch_graph([monitor])
    rules = HealthRules(expected_nodes=(), stale_after_s=2.0)
    panel = open_panel(ros_probe.context.get_domain_id(), rules=rules)
    beat = ros_probe.publisher(String, topic, 10)
    row = f"topic {topic}"
    ok, red = "#2e7d32", "#c62828"
    deadline = time.monotonic() + 60
    while _row_colour(panel, row) != ok:  # publish while the monitor comes up
        assert time.monotonic() < deadline, "the heartbeat row never turned green"
        beat.publish(String(data="x"))
        qtbot.wait(100)
    qtbot.waitUntil(lambda: _row_colour(panel, row) == red, timeout=10_000)  # silence: stale
    assert panel.row_level(row) is Level.STALE
    assert _row_colour(panel, "health_monitor") == ok
    os.kill(launcher.pid("health_monitor"), signal.SIGKILL)
    qtbot.waitUntil(lambda: _row_colour(panel, "health_monitor") == red, timeout=10_000)
