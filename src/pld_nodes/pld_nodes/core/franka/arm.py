"""``FrankaArm``: the driver's handle on the control process (start, command, read, stop).

Used by the ROS node and, without ROS, by tests and benchmarks. Commands go through a queue the
1 kHz loop polls without waiting; the state comes back through the shared-memory block.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from typing import Any

import numpy as np

from pld_nodes.core.franka.control import FrankaControlConfig, run_control_process
from pld_nodes.core.franka.shared import FAULT, STOPPED, SharedState, StateSnapshot


class FrankaArmError(RuntimeError):
    """The control process could not connect or died."""


class FrankaArm:
    def __init__(self, config: FrankaControlConfig) -> None:
        self.config = config
        ctx = mp.get_context("spawn")  # no fork of a process holding ROS/DDS threads
        self.shared = SharedState()
        self._commands: Any = ctx.Queue(maxsize=64)
        self._events: Any = ctx.Queue(maxsize=1024)
        self._process = ctx.Process(
            target=run_control_process,
            args=(config, self.shared.name, self._commands, self._events),
            name="franka-control",
            daemon=True,
        )
        self.events: list[tuple[str, Any, float]] = []

    def start(self, timeout_s: float = 30.0) -> FrankaArm:
        """Start the control process; returns once connected (FrankaArmError otherwise)."""
        self._process.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for kind, payload, _t in self.poll_events(wait_s=0.1):
                if kind == "connected":
                    return self
                if kind == "error":
                    self.close()
                    raise FrankaArmError(str(payload))
            if not self._process.is_alive():
                self.close()
                raise FrankaArmError(f"control process exited (code {self._process.exitcode})")
        self.close()
        raise FrankaArmError(f"no connection to {self.config.robot_ip} within {timeout_s} s")

    # ------------------------------------------------------------------ commands
    def _send(self, item: tuple) -> bool:
        try:
            self._commands.put_nowait(item)
            return True
        except queue.Full:
            return False  # the loop is not draining (dead or faulted): the caller reports it

    def send_delta(self, action: np.ndarray) -> bool:
        """A safe, normalised EE delta + gripper (the gripper is handled by the node)."""
        return self._send(("delta", np.asarray(action, np.float64), time.perf_counter()))

    def home(self) -> bool:
        return self._send(("home",))

    def halt(self) -> bool:
        """Cancel a homing move and brake to a hold."""
        return self._send(("halt",))

    def recover(self) -> bool:
        return self._send(("recover",))

    # ------------------------------------------------------------------ state and events
    def state(self) -> StateSnapshot:
        return self.shared.read()

    def poll_events(self, wait_s: float = 0.0) -> list[tuple[str, Any, float]]:
        """Events since the last call (also kept in :attr:`events`)."""
        got = []
        try:
            got.append(
                self._events.get(timeout=wait_s) if wait_s > 0 else self._events.get_nowait()
            )
            while True:
                got.append(self._events.get_nowait())
        except queue.Empty:
            pass
        self.events.extend(got)
        return got

    def alive(self) -> bool:
        return self._process.is_alive()

    def wait_for_event(self, kind: str, timeout_s: float) -> tuple[str, Any, float]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.poll_events(wait_s=0.05):
                if event[0] == kind:
                    return event
        raise TimeoutError(f"no {kind!r} event within {timeout_s} s")

    def faulted(self) -> bool:
        return self.state().control_state == FAULT

    def close(self, timeout_s: float = 5.0) -> int | None:
        """Stop the motion cleanly (decelerate, finish), end the process; its exit code."""
        if self._process.is_alive():
            self._send(("stop",))
            self._process.join(timeout_s)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(2.0)
        code = self._process.exitcode if self._process.pid is not None else None
        self.poll_events()
        for q in (self._commands, self._events):
            q.close()
            q.cancel_join_thread()
        self.shared.close()
        return code

    @property
    def stopped(self) -> bool:
        return not self._process.is_alive() or self.state().control_state == STOPPED
