"""franka_driver_node: the Franka arm and hand on the robot's topics, over pylibfranka.

The 1 kHz loop runs in its own process (``core.franka.control``; this node never sits between
the robot and its next command): joint position control with libfranka, a jerk-limited joint
tracker towards the goal of the newest EE-delta command (differential IK), a hold when commands
stop, automatic recovery from reflexes with a bounded retry policy. This node only:

- executes /robot/command (the safety monitor's output; malformed commands are dropped and
  counted — the loop then holds on its timeout); the gripper channel opens/closes the hand;
- publishes, at ``publish_rate_hz``, one observation's worth of state with one stamp:
  /robot/joint_states (7 arm joints + 2 finger joints), /robot/ee_pose, /robot/wrench
  (``O_F_ext_hat_K``), /robot/gripper, and /episode/status (the env-level episode, as the sim
  bridge does); /robot/mode (latched) on every change of robot mode or control state;
- serves /episode/reset (move to ``home_joints``, open the hand, start an episode; refused,
  and a homing move halted, while /safety/estopped says the e-stop is latched; the hand's
  services likewise),
  /episode/stop, /robot/recover (leave the fault state), /robot/gripper/{homing,open,close};
- reports reflexes, recoveries, faults, control rate and command-to-motion latency on
  /diagnostics.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, WrenchStamped
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from pld_interfaces.msg import Action, EpisodeStatus
from pld_interfaces.srv import ResetEpisode
from pld_nodes.core.actions import GRIPPER_INDEX, InvalidAction, validate_action
from pld_nodes.core.config import ConfigError, require_finite
from pld_nodes.core.franka.arm import FrankaArm
from pld_nodes.core.franka.control import FrankaControlConfig
from pld_nodes.core.franka.gripper import GripperConfig, GripperProcess
from pld_nodes.core.franka.kinematics import quat_xyzw
from pld_nodes.core.franka.shared import StateSnapshot
from pld_nodes.core.observation import ARM_JOINT_NAMES, FINGER_JOINT_NAMES
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import (
    joint_state,
    pose_stamped,
    stamp_from_seconds,
    wrench_stamped,
)
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config

ROBOT_MODES = ("other", "idle", "move", "guiding", "reflex", "user_stopped", "recovery")


@dataclass(frozen=True)
class FrankaDriverConfig:
    publish_rate_hz: float = 20.0
    """Observations (state + /episode/status) per second: the policies' control rate."""
    task: str = "franka"
    instruction: str = ""
    """Published on /task/instruction (latched) at each episode start, when not empty."""
    max_steps: int = 200
    """Episode length limit (then it ends with reason ``timeout``)."""
    frame_id: str = "base"
    reset_timeout_s: float = 30.0
    gripper: bool = True
    """Connect the Franka Hand (port 1338 on franka-sim); its settings: ``hand.*``."""
    gripper_threshold: float = 0.0
    """Gripper channel above this closes the hand, below opens it (hysteresis: changes only)."""

    def __post_init__(self) -> None:
        for name in ("publish_rate_hz", "reset_timeout_s"):
            require_finite(name, getattr(self, name), low=0.0, low_inclusive=False)
        if self.max_steps <= 0:
            raise ConfigError(f"max_steps must be positive, got {self.max_steps}")


class Episode:
    """The robot-side episode counter (the sim bridge keeps the same fields)."""

    def __init__(self) -> None:
        self.index = -1
        self.state = "idle"
        self.reason = ""
        self.step = 0
        self.seed = -1

    def start(self, seed: int) -> None:
        self.index += 1
        self.state, self.reason, self.step, self.seed = "running", "", 0, seed

    def end(self, reason: str) -> None:
        if self.state == "running":
            self.state, self.reason = "ended", reason


class FrankaDriverNode(Node):
    def __init__(self) -> None:
        super().__init__("franka_driver")
        self.config: FrankaDriverConfig = declare_config(self, FrankaDriverConfig)
        self.control: FrankaControlConfig = declare_config(self, FrankaControlConfig, "control.")
        self.hand: GripperConfig = declare_config(self, GripperConfig, "hand.")
        self.episode = Episode()
        self.counts = {
            "received commands": 0,
            "dropped commands": 0,
            "reflexes": 0,
            "recoveries": 0,
            "faults": 0,
        }
        self.latencies: deque[float] = deque(maxlen=500)
        self._last_mode = ""
        self._homed = threading.Event()
        self._lock = threading.Lock()
        self._last_error = ""
        self._prev_cycles: tuple[float, int] | None = None
        self._cycle_rate = 0.0
        self.arm = FrankaArm(self.control).start()
        self.get_logger().info(
            f"connected to {self.control.robot_ip} (realtime {self.control.realtime}); "
            f"publishing at {self.config.publish_rate_hz} Hz"
        )
        self._gripper_closed: bool | None = None
        self._gripper_waiters: dict[int, list] = {}  # id -> [Event, (ok, message)]
        self.gripper: GripperProcess | None = None
        if self.config.gripper:
            self.gripper = GripperProcess(self.control.robot_ip, self.hand).start()
        self._joints = self.create_publisher(JointState, "/robot/joint_states", qos.SENSOR)
        self._ee = self.create_publisher(PoseStamped, "/robot/ee_pose", qos.SENSOR)
        self._wrench = self.create_publisher(WrenchStamped, "/robot/wrench", qos.SENSOR)
        self._gripper_pub = self.create_publisher(JointState, "/robot/gripper", qos.SENSOR)
        self._status = self.create_publisher(EpisodeStatus, "/episode/status", qos.EPISODE_STATUS)
        self._mode = self.create_publisher(String, "/robot/mode", qos.LATCHED)
        self._instruction = self.create_publisher(String, "/task/instruction", qos.LATCHED)
        self._diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Action, "/robot/command", self._on_command, qos.COMMAND)
        self._estopped = False
        self.create_subscription(Bool, "/safety/estopped", self._on_estopped, qos.LATCHED)
        # Slow services (homing, the hand) block while they wait, so they live on a second node
        # spun by its own executor thread: this node's single-threaded executor keeps streaming
        # state and taking commands meanwhile. (Measured: rclpy's MultiThreadedExecutor lost
        # 3-7 of 10 commands at 20 Hz here; coroutine callbacks awaiting a thread starve it.)
        self._slow = rclpy.create_node("franka_driver_services", context=self.context)
        self._slow_executor = SingleThreadedExecutor(context=self.context)
        self._slow_executor.add_node(self._slow)
        slow = self._slow
        slow.create_service(ResetEpisode, "/episode/reset", self._on_reset)
        self.create_service(Trigger, "/episode/stop", self._on_stop)
        self.create_service(Trigger, "/robot/recover", self._on_recover)
        for name in ("homing", "open", "close"):
            slow.create_service(Trigger, f"/robot/gripper/{name}", self._gripper_service(name))
        threading.Thread(target=self._spin_slow, name="slow-services", daemon=True).start()
        self.create_timer(1.0 / self.config.publish_rate_hz, self._on_tick)
        self.create_timer(1.0, self._publish_diagnostics)

    def _spin_slow(self) -> None:
        with contextlib.suppress(ExternalShutdownException, RuntimeError):
            self._slow_executor.spin()

    def _on_estopped(self, msg: Bool) -> None:
        """The driver's own motions (homing) bypass /robot/command: an e-stop halts them too."""
        self._estopped = bool(msg.data)
        if self._estopped:
            self.arm.halt()
            self.get_logger().warning("e-stop latched: halting; resets refused until cleared")

    # ------------------------------------------------------------------ commands
    def _on_command(self, msg: Action) -> None:
        self.counts["received commands"] += 1
        try:
            action = validate_action(msg.action, 7)
        except InvalidAction as err:
            self.counts["dropped commands"] += 1
            self.get_logger().error(
                f"dropped a malformed command: {err}", throttle_duration_sec=1.0
            )
            return
        if not self.arm.send_delta(action):
            self.counts["dropped commands"] += 1
        if self.gripper is not None:
            close = action[GRIPPER_INDEX] > self.config.gripper_threshold
            if close != self._gripper_closed:
                self._gripper_closed = close
                self.gripper.send("close" if close else "open")

    # ------------------------------------------------------------------ gripper (own process)
    def _gripper_service(self, kind: str):
        def serve(_request: Trigger.Request, response: Trigger.Response):
            if self.gripper is None:
                response.success, response.message = False, "no gripper (parameter gripper)"
                return response
            if self._estopped and kind != "stop":
                response.success, response.message = False, "e-stop latched: refused"
                return response
            ident = self.gripper.send(kind)
            if ident is None:
                response.success, response.message = False, "the hand is busy (queue full)"
                return response
            done = self._gripper_waiters[ident] = [threading.Event(), (False, "no answer in 30 s")]
            done[0].wait(30.0)
            self._gripper_waiters.pop(ident, None)
            response.success, response.message = done[1]
            return response

        return serve

    def _handle_gripper_results(self) -> None:
        for ident, kind, ok, message in self.gripper.poll_results():
            if not ok:
                self.get_logger().warning(f"gripper {kind}: {message}")
            waiter = self._gripper_waiters.get(ident)
            if waiter is not None:
                waiter[1] = (ok, message)
                waiter[0].set()

    # ------------------------------------------------------------------ state out
    def _on_tick(self) -> None:
        self._handle_events()
        if self.gripper is not None:
            self._handle_gripper_results()
        try:
            s = self.arm.state()
        except TimeoutError as exc:
            self.get_logger().error(str(exc), throttle_duration_sec=1.0)
            return
        if not self.arm.alive():
            self.get_logger().fatal("the control process died", throttle_duration_sec=5.0)
        stamp = stamp_from_seconds(s.wall_time or time.time())
        width = self.gripper.width.value if self.gripper else self.hand.open_width_m
        half = width / 2.0
        self._joints.publish(
            joint_state(ARM_JOINT_NAMES + FINGER_JOINT_NAMES, [*s.q, half, half], stamp)
        )
        self._ee.publish(_pose(s, stamp, self.config.frame_id))
        self._wrench.publish(wrench_stamped(s.wrench, stamp, self.config.frame_id))
        self._gripper_pub.publish(joint_state(["gripper_width"], [width], stamp))
        with self._lock:
            ep = self.episode
            if ep.state == "running" and ep.step >= self.config.max_steps:
                ep.end("timeout")
            self._publish_status(stamp)
            if ep.state == "running":
                ep.step += 1
        mode = f"{_robot_mode(s.robot_mode)}/{s.control_state_name}"
        if mode != self._last_mode:
            self._last_mode = mode
            self._mode.publish(String(data=mode))
            self.get_logger().info(f"robot mode: {mode}")
        if self._prev_cycles is not None and s.wall_time > self._prev_cycles[0]:
            t0, c0 = self._prev_cycles
            self._cycle_rate = (s.cycles - c0) / (s.wall_time - t0)
        self._prev_cycles = (s.wall_time, s.cycles)

    def _publish_status(self, stamp) -> None:
        ep = self.episode
        msg = EpisodeStatus(
            episode_index=max(ep.index, 0),
            state=ep.state,
            reason=ep.reason,
            step=ep.step,
            seed=ep.seed,
            success=False,  # a person labels real episodes (operator panel)
            task=self.config.task,
            instruction=self.config.instruction,
        )
        msg.header.stamp = stamp
        self._status.publish(msg)

    def _handle_events(self) -> None:
        for kind, payload, _t in self.arm.poll_events():
            if kind == "latency":
                self.latencies.append(float(payload))
            elif kind == "homed":
                self._homed.set()
            elif kind == "reflex":
                self.counts["reflexes"] += 1
                self._last_error = str(payload)
                self.get_logger().error(f"reflex: {payload}")
            elif kind == "recovered":
                self.counts["recoveries"] += 1
                self.get_logger().warning(str(payload))
            elif kind == "fault":
                self.counts["faults"] += 1
                self._last_error = str(payload)
                self.get_logger().error(f"FAULT: {payload} (call /robot/recover)")
            elif kind == "error":
                self._last_error = str(payload)
                self.get_logger().error(str(payload))
            else:
                self.get_logger().info(f"{kind}: {payload}")

    # ------------------------------------------------------------------ services
    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response):
        if self._estopped:
            response.success, response.message = False, "e-stop latched: reset refused"
            return response
        with self._lock:
            self.episode.end("stopped")
        self._homed.clear()
        if not self.arm.home():
            response.success, response.message = False, "the control loop is not taking commands"
            return response
        if self.gripper is not None:
            self._gripper_closed = False
            self.gripper.send("open")
        if not self._homed.wait(self.config.reset_timeout_s) or self._estopped:
            response.success = False
            response.message = f"not at home after {self.config.reset_timeout_s:.0f} s"
            return response
        with self._lock:
            self.episode.start(int(request.seed))
            response.episode_index = self.episode.index
        if self.config.instruction:
            self._instruction.publish(String(data=self.config.instruction))
        response.success, response.seed = True, int(request.seed)
        response.instruction = self.config.instruction
        response.message = f"episode {response.episode_index} running"
        self.get_logger().info(response.message)
        return response

    def _on_stop(self, _request: Trigger.Request, response: Trigger.Response):
        with self._lock:
            was = self.episode.state == "running"
            self.episode.end("stopped")
        response.success = was
        response.message = "episode stopped" if was else "no episode was running"
        return response

    def _on_recover(self, _request: Trigger.Request, response: Trigger.Response):
        response.success = self.arm.recover()
        response.message = "recovery requested" if response.success else "control loop busy"
        return response

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        try:
            s = self.arm.state()
        except TimeoutError:
            return
        lat = np.asarray(self.latencies) * 1e3
        fault = s.control_state_name in ("fault", "stopped") or not self.arm.alive()
        level = DiagnosticStatus.ERROR if fault else DiagnosticStatus.OK
        if not fault and self.counts["reflexes"]:
            level = DiagnosticStatus.WARN
        values = {
            "control_state": s.control_state_name,
            "robot_mode": _robot_mode(s.robot_mode),
            "control_rate_hz": f"{self._cycle_rate:.1f}",
            "command_success_rate": f"{s.success_rate:.3f}",
            "commands_executed": str(s.commands),
            "command_to_motion_ms_p50": f"{np.percentile(lat, 50):.2f}" if lat.size else "",
            "command_to_motion_ms_p99": f"{np.percentile(lat, 99):.2f}" if lat.size else "",
            "last_error": self._last_error,
            "episode": f"{self.episode.index} {self.episode.state} step {self.episode.step}",
            **{k: str(v) for k, v in self.counts.items()},
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: arm",
            message=self._last_error if fault else s.control_state_name,
            hardware_id="franka",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        out = DiagnosticArray(status=[status])
        out.header.stamp = stamp_from_seconds(time.time())
        self._diag.publish(out)

    def destroy_node(self) -> None:
        self._slow_executor.shutdown(timeout_sec=1.0)
        self._slow.destroy_node()
        code = self.arm.close()
        self.get_logger().info(f"control process stopped (exit code {code})")
        if self.gripper is not None:
            self.gripper.close()
        super().destroy_node()


def _robot_mode(value: int) -> str:
    return ROBOT_MODES[value] if 0 <= value < len(ROBOT_MODES) else f"mode {value}"


def _pose(s: StateSnapshot, stamp, frame_id: str) -> PoseStamped:
    t = s.ee_pose
    return pose_stamped(t[:3, 3], quat_xyzw(t[:3, :3]), stamp, frame_id)


def main(args: list[str] | None = None) -> int:
    return run_node(FrankaDriverNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
