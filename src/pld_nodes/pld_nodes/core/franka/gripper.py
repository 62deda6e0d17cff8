"""The Franka Hand in a process of its own.

pylibfranka's ``Gripper`` calls block (``read_once`` waits ~17 ms for the next gripper state,
``move``/``grasp``/``homing`` take seconds on the real hand) *without releasing the GIL*: in the
node's process they would starve the executor (measured: a thread ticking every 1 ms got 6 ticks
during 5 ``read_once`` calls). So the hand gets its own process, commanded through a queue; it
reports the finger width through a shared value and each command's result through a queue.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import signal
import time
from dataclasses import dataclass
from typing import Any

from pld_nodes.core.config import require_finite

GRIPPER_COMMANDS = ("open", "close", "homing", "stop")


@dataclass(frozen=True)
class GripperConfig:
    """The Franka Hand (the driver declares these under ``hand.``)."""

    open_width_m: float = 0.08
    grasp_width_m: float = 0.0
    speed_mps: float = 0.1
    force_n: float = 20.0
    epsilon_m: float = 0.08
    """Grasp tolerance inner/outer: a grasp of any object up to the open width succeeds."""
    poll_period_s: float = 0.1

    def __post_init__(self) -> None:
        for name in ("open_width_m", "speed_mps", "force_n", "poll_period_s"):
            require_finite(name, getattr(self, name), low=0.0, low_inclusive=False)


def _run(
    robot_ip: str, config: GripperConfig, commands: Any, results: Any, width: Any, alive: Any
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the node decides when the hand stops
    try:
        import pylibfranka as pf

        hand = pf.Gripper(robot_ip)
    except Exception as exc:
        results.put((-1, "connect", False, f"cannot connect to the hand: {exc}"))
        return
    alive.value = 1
    parent = mp.parent_process()
    c = config
    calls = {
        "open": lambda: hand.move(c.open_width_m, c.speed_mps),
        "close": lambda: hand.grasp(
            c.grasp_width_m, c.speed_mps, c.force_n, c.epsilon_m, c.epsilon_m
        ),
        "homing": hand.homing,
        "stop": hand.stop,
    }
    while parent is None or parent.is_alive():
        try:
            ident, kind = commands.get(timeout=c.poll_period_s)
        except queue.Empty:
            with contextlib.suppress(Exception):  # a missed read is retried at the next poll
                width.value = float(hand.read_once().width)
            continue
        if kind == "quit":
            break
        try:
            ok, message = bool(calls[kind]()), ""
        except Exception as exc:
            ok, message = False, str(exc)
        results.put((ident, kind, ok, message or ("done" if ok else "the hand reported failure")))
    alive.value = 0


class GripperProcess:
    def __init__(self, robot_ip: str, config: GripperConfig) -> None:
        ctx = mp.get_context("spawn")
        self.config = config
        self.width = ctx.Value("d", config.open_width_m, lock=False)
        self._alive = ctx.Value("i", 0, lock=False)
        self._commands: Any = ctx.Queue(maxsize=16)
        self._results: Any = ctx.Queue(maxsize=64)
        self._next_id = 0
        self._process = ctx.Process(
            target=_run,
            args=(robot_ip, config, self._commands, self._results, self.width, self._alive),
            name="franka-gripper",
            daemon=True,
        )

    def start(self, timeout_s: float = 10.0) -> GripperProcess:
        self._process.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._process.is_alive() and not self._alive.value:
            time.sleep(0.02)
        if not self._alive.value:
            errors = [r[3] for r in self.poll_results()]
            self.close()
            raise RuntimeError(errors[0] if errors else "the gripper process did not start")
        return self

    def send(self, kind: str) -> int | None:
        """Queue ``kind`` (open/close/homing/stop); its id, or None if the queue is full."""
        if kind not in GRIPPER_COMMANDS:
            raise ValueError(f"unknown gripper command {kind!r}; expected {GRIPPER_COMMANDS}")
        self._next_id += 1
        try:
            self._commands.put_nowait((self._next_id, kind))
        except queue.Full:
            return None
        return self._next_id

    def poll_results(self) -> list[tuple[int, str, bool, str]]:
        got = []
        try:
            while True:
                got.append(self._results.get_nowait())
        except queue.Empty:
            pass
        return got

    def close(self, timeout_s: float = 5.0) -> None:
        if self._process.is_alive():
            with contextlib.suppress(queue.Full):
                self._commands.put_nowait((0, "quit"))
            self._process.join(timeout_s)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(2.0)
        for q in (self._commands, self._results):
            q.close()
            q.cancel_join_thread()
