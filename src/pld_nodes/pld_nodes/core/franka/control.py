"""The Franka's 1 kHz control loop, in a process of its own.

Why a process: libfranka needs a joint command every millisecond (franka-sim aborts the motion
with ``communication_constraints_violation`` after ~20 ms without one), and in the ROS node's
process the executor, message conversion and garbage collection hold the GIL for longer than
that. Here nothing else runs: the loop reads the robot state (``readOnce`` blocks with the GIL
released), drains the command queue without waiting, steps the joint tracker, writes the shared
state block and sends the command.

Commands (tuples on the command queue):
    ("delta", action[7] normalised and already made safe by the safety monitor, t_sent)
        -> joint goal = one damped-least-squares IK step from the *measured* state, so a
        command means "move the EE by this much from where it is now" (as the sim's OSC);
    ("home",)    -> move to ``home_joints`` (reports "homed");
    ("recover",) -> leave the fault state after too many reflexes (operator's decision);
    ("halt",)    -> cancel a homing move and brake to a hold (the e-stop latched);
    ("stop",)    -> decelerate, finish the motion cleanly, exit.
No command for ``command_timeout_s`` -> the goal becomes the stopping point: the arm holds.

Events (tuples on the event queue, for the node to log and report): ("connected", msg),
("reflex", msg), ("recovered", msg), ("fault", msg), ("homed", msg), ("latency", seconds),
("error", msg), ("stopped", msg).

Reflexes (``ControlException``) are recovered automatically (``automatic_error_recovery``) up to
``max_recoveries`` within ``recovery_window_s``; beyond that the loop stays in the fault state,
streaming state only, until the operator sends "recover".
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import queue
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from pld_nodes.core.config import ConfigError, require_finite
from pld_nodes.core.franka import shared as sh
from pld_nodes.core.franka.kinematics import (
    FR3_JOINT_LOWER,
    FR3_JOINT_UPPER,
    IkConfig,
    ee_offset,
    ee_point,
    ik_step,
)
from pld_nodes.core.franka.tracker import JointTracker, TrackerLimits

REALTIME_CONFIGS = ("enforce", "ignore")


@dataclass(frozen=True)
class FrankaControlConfig:
    """Parameters of the control process (the driver node declares them as ROS parameters)."""

    robot_ip: str = "172.16.0.2"
    realtime: str = "enforce"
    """``enforce`` (a PREEMPT_RT kernel, the workstation) or ``ignore`` (franka-sim, CI)."""
    translation_scale_m: float = 0.05
    """Metres of EE translation per control step for a normalised 1.0 (as the sim)."""
    rotation_scale_rad: float = 0.5
    command_timeout_s: float = 0.2
    """No command for this long: decelerate and hold the pose."""
    home_joints: tuple[float, ...] = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
    max_joint_velocity: tuple[float, ...] = (0.5,) * 7
    max_joint_acceleration: float = 3.0
    max_joint_jerk: float = 1000.0
    tracker_bandwidth: float = 40.0
    max_goal_lead_m: float = 0.03
    """How far the joint goal may lead the reference (EE distance) before deltas re-anchor."""
    ik_damping: float = 0.02
    joint_margin_rad: float = 0.05
    max_recoveries: int = 3
    recovery_window_s: float = 60.0
    # collision behaviour (libfranka set_collision_behavior) and impedances
    lower_torque_thresholds: tuple[float, ...] = (20.0,) * 7
    upper_torque_thresholds: tuple[float, ...] = (40.0,) * 7
    lower_force_thresholds: tuple[float, ...] = (20.0,) * 6
    upper_force_thresholds: tuple[float, ...] = (40.0,) * 6
    joint_impedance: tuple[float, ...] = (3000.0, 3000.0, 3000.0, 2500.0, 2500.0, 2000.0, 2000.0)
    cartesian_impedance: tuple[float, ...] = (3000.0, 3000.0, 3000.0, 300.0, 300.0, 300.0)
    idle_read_period_s: float = 0.01
    """State polling period while not controlling (fault state)."""

    def __post_init__(self) -> None:
        if self.realtime not in REALTIME_CONFIGS:
            raise ConfigError(f"realtime must be one of {REALTIME_CONFIGS}, got {self.realtime!r}")
        for name, n in (
            ("home_joints", 7), ("max_joint_velocity", 7), ("lower_torque_thresholds", 7),
            ("upper_torque_thresholds", 7), ("lower_force_thresholds", 6),
            ("upper_force_thresholds", 6), ("joint_impedance", 7), ("cartesian_impedance", 6),
        ):  # fmt: skip
            value = getattr(self, name)
            if len(value) != n or not all(math.isfinite(v) for v in value):
                raise ConfigError(f"{name} must be {n} finite numbers, got {value!r}")
        for name in (
            "translation_scale_m", "rotation_scale_rad", "command_timeout_s",
            "max_joint_acceleration", "max_joint_jerk", "tracker_bandwidth",
            "recovery_window_s", "idle_read_period_s", "max_goal_lead_m",
        ):  # fmt: skip
            require_finite(name, getattr(self, name), low=0.0, low_inclusive=False)
        if any(v <= 0 for v in self.max_joint_velocity):
            raise ConfigError(f"max_joint_velocity must be positive, got {self.max_joint_velocity}")
        lo = np.asarray(FR3_JOINT_LOWER) + self.joint_margin_rad
        hi = np.asarray(FR3_JOINT_UPPER) - self.joint_margin_rad
        home = np.asarray(self.home_joints)
        if np.any(home < lo) or np.any(home > hi):
            raise ConfigError(f"home_joints {self.home_joints} are not inside the joint limits")
        if self.max_recoveries < 0:
            raise ConfigError("max_recoveries must be >= 0")

    @property
    def tracker_limits(self) -> TrackerLimits:
        return TrackerLimits(
            self.max_joint_velocity,
            self.max_joint_acceleration,
            self.max_joint_jerk,
            self.tracker_bandwidth,
        )

    @property
    def ik(self) -> IkConfig:
        return IkConfig(self.ik_damping, self.joint_margin_rad)


class ControlLoop:
    """Owns the connection; :meth:`run` returns after a "stop" command."""

    def __init__(
        self, config: FrankaControlConfig, robot: Any, pf: Any, shared: sh.SharedState,
        commands: Any, events: Any, stop_requested: dict[str, bool] | None = None,
    ) -> None:  # fmt: skip
        self.cfg = config
        self.robot = robot
        self.pf = pf
        self.shared = shared
        self.commands = commands
        self.events = events
        self.stopping = False
        self.counts = {"commands": 0, "reflexes": 0, "recoveries": 0, "cycles": 0}
        self._recovery_times: deque[float] = deque()
        self._scale = np.array([config.translation_scale_m] * 3 + [config.rotation_scale_rad] * 3)
        self._home = np.asarray(config.home_joints, np.float64)
        self._stop_requested = stop_requested if stop_requested is not None else {"flag": False}
        self._parent = mp.parent_process()

    def _should_stop(self) -> bool:
        """A stop command, SIGTERM, or the node process gone (never leave an arm orphaned)."""
        if self._stop_requested["flag"]:
            return True
        return self._parent is not None and not self._parent.is_alive()

    def _event(self, kind: str, payload: Any) -> None:
        with contextlib.suppress(queue.Full):  # reporting must never stall the loop
            self.events.put_nowait((kind, payload, time.time()))

    def run(self) -> None:
        while not self.stopping:
            try:
                self._control()
            except self.pf.ControlException as exc:
                self.counts["reflexes"] += 1
                self._event("reflex", str(exc))
                self._after_reflex()
        self._publish_idle(sh.STOPPED)
        self._event("stopped", "control loop finished")

    # ------------------------------------------------------------------ reflexes
    def _after_reflex(self) -> None:
        now = time.monotonic()
        while self._recovery_times and now - self._recovery_times[0] > self.cfg.recovery_window_s:
            self._recovery_times.popleft()
        if len(self._recovery_times) < self.cfg.max_recoveries:
            self._recover(automatic=True)
            return
        self._event(
            "fault",
            f"{len(self._recovery_times)} automatic recoveries within "
            f"{self.cfg.recovery_window_s:.0f} s: holding in the fault state until the "
            "operator recovers",
        )
        while True:  # fault: stream state, wait for the operator
            self._publish_idle(sh.FAULT)
            cmd = self._next_command()
            if cmd is not None and cmd[0] == "recover":
                self._recover(automatic=False)
                self._recovery_times.clear()
                return
            if (cmd is not None and cmd[0] == "stop") or self._should_stop():
                self.stopping = True
                return
            time.sleep(self.cfg.idle_read_period_s)

    def _recover(self, automatic: bool) -> None:
        self._publish_idle(sh.RECOVERING)
        t0 = time.perf_counter()
        try:
            self.robot.automatic_error_recovery()
        except Exception as exc:
            self._event("error", f"error recovery failed: {exc}")
            self._recovery_times.append(time.monotonic())
            return
        self._recovery_times.append(time.monotonic())
        self.counts["recoveries"] += 1
        how = "automatic" if automatic else "operator-requested"
        self._event(
            "recovered", f"{how} error recovery in {1e3 * (time.perf_counter() - t0):.0f} ms"
        )

    # ------------------------------------------------------------------ commands
    def _next_command(self) -> tuple | None:
        try:
            return self.commands.get_nowait()
        except queue.Empty:
            return None

    def _publish_idle(self, control_state: int) -> None:
        try:
            state = self.robot.read_once()
        except Exception:
            self.shared.write(control_state=control_state)
            return
        self._write(state, None, None, control_state)

    def _write(self, state: Any, goal: np.ndarray | None, q_cmd: np.ndarray | None, cs: int):
        values: dict[str, Any] = {
            "robot_time": state.time.to_sec(),
            "wall_time": time.time(),
            "q": state.q,
            "dq": state.dq,
            "O_T_EE": state.O_T_EE,
            "wrench": state.O_F_ext_hat_K,
            "robot_mode": int(state.robot_mode),
            "control_state": cs,
            "success_rate": state.control_command_success_rate,
            **self.counts,
        }
        if goal is not None:
            values["q_goal"] = goal
        if q_cmd is not None:
            values["q_cmd"] = q_cmd
        self.shared.write(**values)

    def _goal_after(
        self, goal: np.ndarray, q_ref: np.ndarray, q: np.ndarray, o_t_ee: Any, delta: np.ndarray
    ) -> np.ndarray:
        """The joint goal after an EE ``delta``: applied to the previous goal, so a sequence of
        deltas is followed exactly, unless that goal leads the reference by more than
        ``max_goal_lead_m`` (blocked by contact, or a long pause): then to the reference, so
        the goal never winds up away from the arm."""
        measured_ee = np.asarray(o_t_ee).reshape(4, 4, order="F")[:3, 3]
        ee_in_link7 = ee_offset(q, measured_ee)  # whatever EE the robot is configured with
        ee_goal, ee_ref = ee_point(goal, ee_in_link7), ee_point(q_ref, ee_in_link7)
        if np.linalg.norm(ee_goal - ee_ref) <= self.cfg.max_goal_lead_m:
            return ik_step(goal, ee_goal, delta, self.cfg.ik)
        return ik_step(q_ref, ee_ref, delta, self.cfg.ik)

    def _control(self) -> None:
        pf = self.pf
        ctrl = self.robot.start_joint_position_control(pf.ControllerMode.JointImpedance)
        try:
            state, _ = ctrl.readOnce()
            tracker = JointTracker(np.asarray(state.q_d), self.cfg.tracker_limits)
            goal = tracker.q.copy()
            last_command = time.perf_counter()
            holding, homing, finishing_since = False, False, None
            pending_latency: tuple[float, np.ndarray] | None = None
            while True:
                state, period = ctrl.readOnce()
                dt = period.to_sec() or 1e-3
                now = time.perf_counter()
                for _ in range(8):  # drain a burst; never wait
                    cmd = self._next_command()
                    if cmd is None:
                        break
                    kind = cmd[0]
                    if kind == "delta" and not homing and finishing_since is None:
                        q = np.asarray(state.q)
                        delta = np.asarray(cmd[1][:6], np.float64) * self._scale
                        goal = self._goal_after(goal, tracker.q, q, state.O_T_EE, delta)
                        last_command, holding = now, False
                        self.counts["commands"] += 1
                        if pending_latency is None and np.any(delta != 0.0):
                            pending_latency = (float(cmd[2]), q)
                    elif kind == "home":
                        goal, homing = self._home.copy(), True
                    elif kind == "halt":
                        goal, homing, holding = tracker.stop_goal(), False, True
                    elif kind == "stop":
                        self.stopping = True
                if self.counts["cycles"] % 100 == 0 and self._should_stop():
                    self.stopping = True
                if (
                    homing  # checked first: the 1 kHz path pays nothing when not homing
                    and np.max(np.abs(tracker.q - self._home)) < 1e-3
                    and np.max(np.abs(tracker.v)) < 1e-3
                ):
                    homing, last_command = False, now
                    self._event("homed", "at the home joint configuration")
                if self.stopping and finishing_since is None:
                    finishing_since, goal = now, tracker.stop_goal()
                elif not homing and not holding and now - last_command > self.cfg.command_timeout_s:
                    goal, holding = tracker.stop_goal(), True
                q_cmd = tracker.step(goal, dt)
                self.counts["cycles"] += 1
                if pending_latency is not None:
                    t_sent, q0 = pending_latency
                    if np.max(np.abs(np.asarray(state.q) - q0)) > 1e-4:
                        self._event("latency", now - t_sent)
                        pending_latency = None
                    elif now - t_sent > 1.0:
                        pending_latency = None
                cs = sh.HOMING if homing else sh.CONTROLLING
                self._write(state, goal, q_cmd, cs)
                command = pf.JointPositions(q_cmd.tolist())
                at_rest = np.max(np.abs(tracker.v)) < 1e-3
                if finishing_since is not None and (at_rest or now - finishing_since > 2.0):
                    command.motion_finished = True
                    ctrl.writeOnce(command)
                    return
                ctrl.writeOnce(command)
        finally:
            # a kept reference to the control object (e.g. via a stored traceback) blocks
            # the next start_*_control ("another control or read operation is running")
            ctrl = None


def run_control_process(
    config: FrankaControlConfig, shm_name: str, commands: Any, events: Any
) -> None:
    """Entry point of the control process (multiprocessing, spawn)."""
    sys.setswitchinterval(0.0005)  # the queue feeder thread must not hold the GIL for 5 ms
    # Ctrl-C reaches the whole process group: only the node decides when the arm stops (it
    # sends "stop": decelerate, finish the motion). SIGTERM asks for the same clean stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_requested = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.__setitem__("flag", True))
    shared = sh.SharedState(shm_name)
    try:
        import pylibfranka as pf
    except ImportError as exc:
        events.put(("error", f"pylibfranka is not installed: {exc}", time.time()))
        return
    try:
        rt = (
            pf.RealtimeConfig.kEnforce
            if config.realtime == "enforce"
            else pf.RealtimeConfig.kIgnore
        )
        robot = pf.Robot(config.robot_ip, rt)
        robot.set_collision_behavior(
            list(config.lower_torque_thresholds),
            list(config.upper_torque_thresholds),
            list(config.lower_force_thresholds),
            list(config.upper_force_thresholds),
        )
        robot.set_joint_impedance(list(config.joint_impedance))
        robot.set_cartesian_impedance(list(config.cartesian_impedance))
    except Exception as exc:
        events.put(
            ("error", f"cannot connect to the robot at {config.robot_ip}: {exc}", time.time())
        )
        shared.close()
        return
    events.put(("connected", f"connected to {config.robot_ip} ({config.realtime})", time.time()))
    loop = ControlLoop(config, robot, pf, shared, commands, events, stop_requested)
    try:
        loop.run()
    except Exception as exc:
        events.put(("error", f"control loop died: {exc!r}", time.time()))
    finally:
        with contextlib.suppress(Exception):
            robot.stop()
        del robot
        shared.close()
