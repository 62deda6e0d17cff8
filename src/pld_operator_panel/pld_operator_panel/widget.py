"""The operator panel widget: what the operator looks at and presses all day.

It renders ``PanelModel`` and forwards presses to a ``PanelActions`` object (the ROS bridge);
it never waits for ROS. Keys (the panel must have focus; the instruction field keeps letters
and Space for typing, but Esc always reaches the e-stop):

    Space / Esc  E-STOP                 N  start episode     E  end (stop) episode
    S  label success   F  label failure  P  pause (hold arm)  Ctrl+D  discard   Ctrl+R  reset scene

Resetting the e-stop has no key: it always asks for confirmation.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Protocol

from .model import (
    AWAITING_LABEL,
    RESETTING,
    RUNNING,
    Action,
    CameraFrame,
    Level,
    PanelModel,
    StoreStats,
    format_bytes,
)
from .qt import Qt, QtCore, QtGui, QtWidgets
from .store_stats import StoreWatcher

PANEL_MODES = ("base", "residual", "hybrid", "eval")
PHASE_COLOURS = {"base": "#1565c0", "residual": "#6a1b9a", "hold": "#e65100"}
STATE_COLOURS = {RUNNING: "#2e7d32", AWAITING_LABEL: "#f9a825", RESETTING: "#1565c0"}
LEVEL_COLOURS = {
    Level.OK: ("#2e7d32", "#ffffff"),
    Level.WARN: ("#f9a825", "#000000"),
    Level.ERROR: ("#c62828", "#ffffff"),
    Level.STALE: ("#c62828", "#ffffff"),
}
KEYS: dict[tuple[int, bool], Action] = {
    (Qt.Key_Space, False): Action.ESTOP,
    (Qt.Key_Escape, False): Action.ESTOP,
    (Qt.Key_N, False): Action.START,
    (Qt.Key_E, False): Action.STOP,
    (Qt.Key_S, False): Action.SUCCESS,
    (Qt.Key_F, False): Action.FAILURE,
    (Qt.Key_P, False): Action.PAUSE,
    (Qt.Key_D, True): Action.DISCARD,
    (Qt.Key_R, True): Action.RESET_SCENE,
}
BUTTONS: tuple[tuple[Action, str], ...] = (
    (Action.START, "Start episode  [N]"),
    (Action.STOP, "Stop episode  [E]"),
    (Action.SUCCESS, "✔ Success  [S]"),
    (Action.FAILURE, "✘ Failure  [F]"),
    (Action.DISCARD, "Discard  [Ctrl+D]"),
    (Action.PAUSE, "Pause: hold arm  [P]"),
    (Action.RESET_SCENE, "Reset robot / scene  [Ctrl+R]"),
)


class PanelActions(Protocol):
    """What the panel can ask of the stack (implemented by ``ros_bridge.PanelBridge``)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def discard(self) -> None: ...
    def label(self, success: bool) -> None: ...
    def set_mode(self, mode: str) -> None: ...
    def pause(self) -> None: ...
    def reset_scene(self) -> None: ...
    def estop(self) -> None: ...
    def estop_reset(self) -> None: ...
    def publish_instruction(self, text: str) -> None: ...


Confirm = Callable[[QtWidgets.QWidget, str, str], bool]


def ask_operator(parent: QtWidgets.QWidget, title: str, text: str) -> bool:
    """A modal yes/no question whose default answer is No."""
    box = QtWidgets.QMessageBox
    answer = box.question(parent, title, text, box.Yes | box.No, box.No)
    return answer == box.Yes


def _badge(label: QtWidgets.QLabel, text: str, bg: str, fg: str = "#ffffff") -> None:
    label.setText(text)
    label.setStyleSheet(
        f"background:{bg}; color:{fg}; font-weight:bold; padding:4px; border-radius:4px;"
    )


class OutcomePlot(QtWidgets.QWidget):
    """Recent outcomes per mode from the store: a strip of green/red cells and the rate."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.stats: StoreStats | None = None
        self.setMinimumHeight(90)

    def set_stats(self, stats: StoreStats | None) -> None:
        self.stats = stats
        self.update()

    def paintEvent(self, _event: QtGui.QPaintEvent) -> None:
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor("#fafafa"))
        modes = self.stats.per_mode if self.stats else ()
        if not modes:
            p.drawText(self.rect(), int(Qt.AlignCenter), "no labelled episodes in the store yet")
            return
        row_h = max(14, min(22, (self.height() - 4) // len(modes)))
        cell = row_h - 6
        for i, ms in enumerate(modes):
            y = 2 + i * row_h
            p.setPen(QtGui.QColor("#000000"))
            p.drawText(4, y, 70, row_h, int(Qt.AlignVCenter), ms.mode or "?")
            for j, ok in enumerate(ms.outcomes):
                colour = QtGui.QColor("#2e7d32" if ok else "#c62828")
                p.fillRect(78 + j * (cell + 2), y + 3, cell, cell, colour)
            rate = ms.rate
            text = "—" if rate is None else f"{sum(ms.outcomes)}/{len(ms.outcomes)} {rate:.0%}"
            x = 78 + 20 * (cell + 2) + 6
            p.drawText(x, y, max(10, self.width() - x), row_h, int(Qt.AlignVCenter), text)


class OperatorPanel(QtWidgets.QWidget):
    """The panel; ``events`` is the queue the ROS side fills, drained on a Qt timer."""

    def __init__(
        self,
        actions: PanelActions,
        events: queue.SimpleQueue,
        store_path: str = "",
        confirm: Confirm = ask_operator,
        model: PanelModel | None = None,
        clock: Callable[[], float] = time.monotonic,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.actions = actions
        self.events = events
        self.model = model or PanelModel()
        self.confirm = confirm
        self.clock = clock
        self._store_path = store_path
        self.cameras: dict[str, QtWidgets.QLabel] = {}
        self.buttons: dict[Action, QtWidgets.QPushButton] = {}
        self.setObjectName("PldOperatorPanel")
        self.setWindowTitle("PLD operator panel")
        self.setFocusPolicy(Qt.StrongFocus)
        self._build()
        self._watcher = StoreWatcher(self._current_store, events.put).start()
        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(100)
        self.refresh()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QtWidgets.QVBoxLayout(self)
        top = QtWidgets.QHBoxLayout()
        self.estop_button = QtWidgets.QPushButton("E-STOP\n[Space / Esc]")
        self.estop_button.setMinimumSize(220, 80)
        self.estop_button.setStyleSheet(
            "QPushButton{background:#d50000; color:white; font-size:22px; font-weight:bold;"
            " border:3px solid #7f0000; border-radius:8px;}"
        )
        self.estop_button.clicked.connect(lambda: self.trigger(Action.ESTOP))
        self.estop_banner = QtWidgets.QLabel()
        self.estop_banner.setAlignment(Qt.AlignCenter)
        self.estop_banner.setMinimumHeight(80)
        self.estop_banner.setSizePolicy(
            QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Preferred
        )
        self.estop_reset_button = QtWidgets.QPushButton("Reset e-stop…")
        self.estop_reset_button.setMinimumHeight(80)
        self.estop_reset_button.clicked.connect(lambda: self.trigger(Action.ESTOP_RESET))
        for w in (self.estop_button, self.estop_banner, self.estop_reset_button):
            top.addWidget(w)
        root.addLayout(top)

        body = QtWidgets.QHBoxLayout()
        root.addLayout(body, 1)
        body.addLayout(self._episode_column(), 1)
        body.addLayout(self._status_column(), 1)

        self.status_line = QtWidgets.QLabel("ready")
        self.status_line.setStyleSheet("padding:3px; border-top:1px solid #999;")
        root.addWidget(self.status_line)
        for w in [*self.findChildren(QtWidgets.QAbstractButton), self.mode_combo]:
            w.setFocusPolicy(Qt.NoFocus)  # keys belong to the panel, never to a button

    def _episode_column(self) -> QtWidgets.QVBoxLayout:
        col = QtWidgets.QVBoxLayout()
        self.state_label = QtWidgets.QLabel()
        self.state_label.setMinimumHeight(40)
        font = self.state_label.font()
        font.setPointSize(font.pointSize() + 5)
        self.state_label.setFont(font)
        self.episode_label = QtWidgets.QLabel()
        self.phase_label = QtWidgets.QLabel()
        self.instruction_label = QtWidgets.QLabel()
        self.instruction_label.setWordWrap(True)
        self.robot_mode_label = QtWidgets.QLabel()
        for w in (self.state_label, self.episode_label, self.phase_label):
            col.addWidget(w)
        col.addWidget(self.instruction_label)
        col.addWidget(self.robot_mode_label)
        grid = QtWidgets.QGridLayout()
        for i, (action, text) in enumerate(BUTTONS):
            button = QtWidgets.QPushButton(text)
            button.setMinimumHeight(40)
            button.clicked.connect(lambda _c=False, a=action: self.trigger(a))
            self.buttons[action] = button
            grid.addWidget(button, i // 2, i % 2)
        self.buttons[Action.SUCCESS].setStyleSheet("QPushButton:enabled{background:#a5d6a7;}")
        self.buttons[Action.FAILURE].setStyleSheet("QPushButton:enabled{background:#ef9a9a;}")
        col.addLayout(grid)
        mode_row = QtWidgets.QHBoxLayout()
        self.mode_combo = QtWidgets.QComboBox()
        for mode in PANEL_MODES:
            self.mode_combo.addItem(mode)
        self._disable_unsupported_modes()
        self.mode_button = QtWidgets.QPushButton("Set mode for next episodes")
        self.mode_button.clicked.connect(self._set_mode)
        mode_row.addWidget(self.mode_combo)
        mode_row.addWidget(self.mode_button)
        col.addLayout(mode_row)
        instr_row = QtWidgets.QHBoxLayout()
        self.instruction_edit = QtWidgets.QLineEdit()
        self.instruction_edit.setPlaceholderText("task instruction, e.g. 'lift the red cube'")
        self.instruction_edit.setFocusPolicy(Qt.ClickFocus)  # never steals the panel's keys
        self.instruction_edit.returnPressed.connect(self._publish_instruction)
        self.instruction_button = QtWidgets.QPushButton("Set instruction")
        self.instruction_button.clicked.connect(self._publish_instruction)
        instr_row.addWidget(self.instruction_edit)
        instr_row.addWidget(self.instruction_button)
        col.addLayout(instr_row)
        col.addStretch(1)
        return col

    def _status_column(self) -> QtWidgets.QVBoxLayout:
        col = QtWidgets.QVBoxLayout()
        self.camera_row = QtWidgets.QHBoxLayout()
        self.no_camera_label = QtWidgets.QLabel("no camera streams")
        self.camera_row.addWidget(self.no_camera_label)
        col.addLayout(self.camera_row)
        self.health_table = QtWidgets.QTableWidget(0, 3)
        self.health_table.setHorizontalHeaderLabels(["node / stream", "status", "age"])
        self.health_table.verticalHeader().setVisible(False)
        header = self.health_table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.Stretch)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeToContents)
        self.health_table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.health_table.setFocusPolicy(Qt.NoFocus)
        self.health_table.setMinimumHeight(160)
        col.addWidget(self.health_table, 1)
        self.safety_label = QtWidgets.QLabel()
        self.safety_label.setWordWrap(True)
        self.versions_label = QtWidgets.QLabel()
        self.store_label = QtWidgets.QLabel()
        self.store_label.setWordWrap(True)
        self.plot = OutcomePlot()
        for w in (self.safety_label, self.versions_label, self.store_label, self.plot):
            col.addWidget(w)
        return col

    def _disable_unsupported_modes(self) -> None:
        """Modes the episode manager would refuse are shown but cannot be chosen."""
        from pld_nodes.core.arbiter import MODES

        items = self.mode_combo.model()
        for i, mode in enumerate(PANEL_MODES):
            if mode not in MODES:
                item = items.item(i)
                item.setEnabled(False)
                item.setToolTip(f"the stack has no '{mode}' mode (valid: {', '.join(MODES)})")
        self.mode_combo.setCurrentText("hybrid")

    # ------------------------------------------------------------------ input
    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        ctrl = bool(event.modifiers() & Qt.ControlModifier)
        action = KEYS.get((event.key(), ctrl))
        if action is None or (event.isAutoRepeat() and action is not Action.ESTOP):
            super().keyPressEvent(event)
            return
        self.trigger(action)

    def trigger(self, action: Action) -> bool:
        """Do ``action`` if the current state allows it; say so in the status line either way."""
        ok, why = self.model.allowed(action)
        if not ok:
            self._say(f"{action.value}: {why}", error=True)
            return False
        if action is Action.ESTOP_RESET:
            text = (
                "Clear the latched e-stop?\n\nThe robot can move again as soon as a policy "
                "commands it. Make sure the workspace is clear."
            )
            if not self.confirm(self, "Reset e-stop", text):
                self._say("e-stop reset cancelled: the e-stop stays latched")
                return False
        calls: dict[Action, Callable[[], None]] = {
            Action.ESTOP: self.actions.estop,
            Action.ESTOP_RESET: self.actions.estop_reset,
            Action.START: self.actions.start,
            Action.STOP: self.actions.stop,
            Action.SUCCESS: lambda: self.actions.label(True),
            Action.FAILURE: lambda: self.actions.label(False),
            Action.DISCARD: self.actions.discard,
            Action.PAUSE: self.actions.pause,
            Action.RESET_SCENE: self.actions.reset_scene,
        }
        calls[action]()
        self._say(f"{action.value}: requested…")
        if action in (Action.SUCCESS, Action.FAILURE, Action.DISCARD):
            self._watcher.poke()
        return True

    def _set_mode(self) -> None:
        self.actions.set_mode(self.mode_combo.currentText())
        self._say(f"set mode {self.mode_combo.currentText()}: requested…")

    def _publish_instruction(self) -> None:
        text = self.instruction_edit.text().strip()
        if not text:
            self._say("instruction: empty, nothing published", error=True)
            return
        self.actions.publish_instruction(text)
        self.setFocus()  # hand the keys back to the panel's shortcuts

    def _say(self, text: str, error: bool = False) -> None:
        stamp = time.strftime("%H:%M:%S")
        colour = "#c62828" if error else "#000000"
        self.status_line.setStyleSheet(f"padding:3px; border-top:1px solid #999; color:{colour};")
        self.status_line.setText(f"{stamp}  {text}")

    # ------------------------------------------------------------------ data
    def _current_store(self) -> str:
        return self._store_path or self.model.recorder_store

    def drain(self) -> int:
        """Apply every queued event to the model; returns how many there were."""
        n = 0
        now = self.clock()
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return n
            n += 1
            if isinstance(event, CameraFrame):
                self._show_frame(event)
            self.model.apply(event, now)
            if event is self.model.last_result:
                ok = self.model.last_result.ok
                verdict = "done" if ok else "REFUSED"
                self._say(f"{event.action}: {verdict} — {event.message}", error=not ok)

    def _show_frame(self, frame: CameraFrame) -> None:
        label = self.cameras.get(frame.camera)
        if label is None:
            self.no_camera_label.hide()
            label = self.cameras[frame.camera] = QtWidgets.QLabel()
            label.setToolTip(frame.camera)
            self.camera_row.addWidget(label)
        image = QtGui.QImage(
            frame.rgb, frame.width, frame.height, 3 * frame.width, QtGui.QImage.Format_RGB888
        ).copy()  # own the pixels: the bytes object goes away
        label.setPixmap(QtGui.QPixmap.fromImage(image).scaledToWidth(160))

    def refresh(self) -> None:
        self.drain()
        m, now = self.model, self.clock()
        self._render_estop()
        state = m.state
        lc = m.lifecycle
        colour = STATE_COLOURS.get(state, "#616161")
        title = state.upper().replace("_", " ")
        if state == AWAITING_LABEL:
            title += " — press S or F"
        _badge(self.state_label, title, colour, "#000000" if state == AWAITING_LABEL else "#fff")
        if lc is None:
            self.episode_label.setText("no episode yet (episode manager has published nothing)")
        else:
            t_base = m.t_base
            tb = "" if t_base is None else f"   T_base {t_base}"
            outcome = ""
            if lc.state == "committed":
                verdict = "SUCCESS" if lc.success else "FAILURE"
                outcome = f"   labelled {verdict} ({lc.label_source})"
            self.episode_label.setText(
                f"episode {lc.episode_index}   mode {lc.mode or '?'}   step {m.step}{tb}{outcome}"
            )
        phase = m.phase
        if phase:
            hold = m.last_step.hold_reason if m.last_step and phase == "hold" else ""
            text = f"phase: {phase.upper()}" + (f" ({hold})" if hold else "")
            _badge(self.phase_label, text, PHASE_COLOURS.get(phase, "#616161"))
        else:
            _badge(self.phase_label, "phase: —  (no episode running)", "#e0e0e0", "#000000")
        self.instruction_label.setText(f"instruction: {m.instruction or '—'}")
        self.robot_mode_label.setText(f"robot mode: {m.robot_mode or '— (not published)'}")
        for action, button in self.buttons.items():
            allowed, why = m.allowed(action)
            button.setEnabled(allowed)
            button.setToolTip(why)
        self.estop_reset_button.setEnabled(m.allowed(Action.ESTOP_RESET)[0])
        self._render_health(now)
        self._render_status()

    def _render_estop(self) -> None:
        m = self.model
        if m.estopped:
            reason = f": {m.estop_reason}" if m.estop_reason else ""
            _badge(self.estop_banner, f"E-STOP LATCHED{reason}", "#c62828")
        elif m.estopped is None:
            _badge(self.estop_banner, "e-stop state unknown (no safety monitor)", "#f9a825", "#000")
        else:
            _badge(self.estop_banner, "e-stop clear", "#2e7d32")

    def _render_health(self, now: float) -> None:
        rows = self.model.health(now)
        table = self.health_table
        table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            bg, fg = LEVEL_COLOURS[row.level]
            age = "" if row.age_s is None else f"{row.age_s:.1f} s"
            verdict = row.level.name + (f": {row.message}" if row.message else "")
            for j, text in enumerate((row.name, verdict, age)):
                item = QtWidgets.QTableWidgetItem(text)
                item.setBackground(QtGui.QColor(bg))
                item.setForeground(QtGui.QColor(fg))
                table.setItem(i, j, item)

    def _render_status(self) -> None:
        m = self.model
        if m.interventions:
            parts = ", ".join(f"{k}: {v}" for k, v in sorted(m.interventions.items()))
            self.safety_label.setText(f"safety interventions: {parts}")
        else:
            self.safety_label.setText("safety interventions: none")
        learner = "—" if m.learner_version is None else f"v{m.learner_version}"
        residual = "—" if m.residual_version is None else f"v{m.residual_version}"
        self.versions_label.setText(f"learner weights {learner}   residual running {residual}")
        s = m.store
        if s is None:
            self.store_label.setText(f"episode store: {self._current_store() or '— (unknown)'}")
        else:
            note = f"  ({s.error})" if s.error else ""
            self.store_label.setText(
                f"episode store: {s.n_episodes} episode(s), {s.n_steps} steps, "
                f"{format_bytes(s.disk_bytes)} on disk, {format_bytes(s.free_bytes)} free{note}"
            )
        self.plot.set_stats(s)

    # ------------------------------------------------------------------ queries for tests/tools
    def row_level(self, name: str) -> Level | None:
        """The level shown for a health row (None if the row is absent)."""
        for row in self.model.health(self.clock()):
            if row.name == name:
                return row.level
        return None

    def shutdown(self) -> None:
        """Stop the timer and the store thread (the ROS side belongs to the caller)."""
        self._timer.stop()
        self._watcher.stop()

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        self.setFocus()  # the keys (E-STOP first) work from the moment the panel is shown

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)
