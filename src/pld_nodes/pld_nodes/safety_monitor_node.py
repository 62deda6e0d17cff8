"""safety_monitor_node: the only path from the policies to the robot.

Every candidate command on ``input_topic`` (the arbiter's /arbiter/command) goes through
``pld_nodes.core.safety.SafetyMonitor`` and the result — the command made safe, or a hold — is
published on ``output_topic`` (/robot/command, the one topic the Franka driver and the sim bridge
execute) with the candidate's stamp, so the recorder can store what was really executed.

Robot state comes from /robot/ee_pose, /robot/joint_states and (``use_wrench``) /robot/wrench,
assembled by stamp; the EE speed is estimated from consecutive poses.

Time: ``time_source: wall`` (the Franka) compares stamps with this node's clock and runs the
stale-input watchdog on a timer. ``time_source: robot`` (sims, whose stamps are sim time) uses
the newest robot-state stamp as "now" and runs the watchdog as robot time advances: a realtime
sim streams state, so missing commands are held as on the robot; a lockstep sim only advances
when commanded, so it is never stepped by a hold of the watchdog. Either way the watchdog
publishes a hold at most ``hold_rate_hz`` while no fresh command arrives.

E-stop: any message on /safety/estop (std_msgs/String, the reason) or a call of the
/safety/estop service latches it; only /safety/reset clears it. /safety/estopped (latched Bool)
shows the state. /diagnostics reports every intervention by reason.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, WrenchStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from pld_interfaces.msg import Action, EpisodeStatus
from pld_nodes.core.config import ConfigError, require_finite
from pld_nodes.core.observation import ARM_JOINT_NAMES, StampAssembler
from pld_nodes.core.safety import (
    RobotState,
    SafetyDecision,
    SafetyLimits,
    SafetyMonitor,
    SpeedEstimator,
)
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import nanoseconds_from_stamp, seconds_from_stamp, stamp_from_seconds
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config
from pld_nodes.ros.robot_observer import joint_positions

TIME_SOURCES = ("wall", "robot")


@dataclass(frozen=True)
class SafetyNodeConfig:
    input_topic: str = "/arbiter/command"
    output_topic: str = "/robot/command"
    time_source: str = "wall"
    """``wall`` (robot, realtime sim) or ``robot`` (lockstep sim: state stamps are the clock)."""
    use_wrench: bool = True
    """Require /robot/wrench as part of the robot state (the force/torque rules need it)."""
    hold_rate_hz: float = 20.0
    """How often the watchdog re-sends a hold while commands are missing (or e-stopped)."""
    diagnostics_period_s: float = 1.0

    def __post_init__(self) -> None:
        if self.time_source not in TIME_SOURCES:
            raise ConfigError(
                f"time_source must be one of {TIME_SOURCES}, got {self.time_source!r}"
            )
        if self.input_topic == self.output_topic:
            raise ConfigError(f"input_topic and output_topic are both {self.input_topic!r}")
        require_finite("hold_rate_hz", self.hold_rate_hz, low=0.0, low_inclusive=False)
        require_finite(
            "diagnostics_period_s", self.diagnostics_period_s, low=0.0, low_inclusive=False
        )


class SafetyMonitorNode(Node):
    def __init__(self) -> None:
        super().__init__("safety_monitor")
        self.config: SafetyNodeConfig = declare_config(self, SafetyNodeConfig)
        self.monitor = SafetyMonitor(declare_config(self, SafetyLimits, "safety."))
        self._speed = SpeedEstimator()
        parts = ["ee", "joints", *(["wrench"] if self.config.use_wrench else [])]
        self._assembler = StampAssembler(parts)
        self._robot_now: float | None = None  # newest robot-state stamp (time_source robot)
        self._last_reasons: tuple[str, ...] = ()
        self._holding = False
        self.published = 0
        self._out = self.create_publisher(Action, self.config.output_topic, qos.COMMAND)
        self._estopped = self.create_publisher(Bool, "/safety/estopped", qos.LATCHED)
        self._diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Action, self.config.input_topic, self._on_command, qos.COMMAND)
        self.create_subscription(PoseStamped, "/robot/ee_pose", self._on_ee, qos.SENSOR)
        self.create_subscription(JointState, "/robot/joint_states", self._on_joints, qos.SENSOR)
        if self.config.use_wrench:
            self.create_subscription(WrenchStamped, "/robot/wrench", self._on_wrench, qos.SENSOR)
        self.create_subscription(
            EpisodeStatus, "/episode/status", self._on_status, qos.EPISODE_STATUS
        )
        self._episode: int | None = None
        self.create_subscription(String, "/safety/estop", self._on_estop_topic, 10)
        self.create_service(Trigger, "/safety/estop", self._on_estop_service)
        self.create_service(Trigger, "/safety/reset", self._on_reset)
        self._last_watchdog_hold = float("-inf")
        if self.config.time_source == "wall":
            self.create_timer(1.0 / self.config.hold_rate_hz, self._on_watchdog)
        self.create_timer(self.config.diagnostics_period_s, self._publish_diagnostics)
        self._publish_estop_state()
        self.get_logger().info(
            f"safety: {self.config.input_topic} -> {self.config.output_topic}, "
            f"time {self.config.time_source}, {self.monitor.limits}"
        )

    # ------------------------------------------------------------------ robot state
    def _on_ee(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self._add_part(msg, "ee", np.array([p.x, p.y, p.z]))

    def _on_joints(self, msg: JointState) -> None:
        try:
            joints = np.asarray(joint_positions(msg, ARM_JOINT_NAMES), np.float64)
        except ValueError as exc:
            self.monitor.interventions["malformed robot state"] += 1
            self.get_logger().error(str(exc), throttle_duration_sec=2.0)
            return
        self._add_part(msg, "joints", joints)

    def _on_wrench(self, msg: WrenchStamped) -> None:
        f, t = msg.wrench.force, msg.wrench.torque
        self._add_part(msg, "wrench", np.array([f.x, f.y, f.z, t.x, t.y, t.z]))

    def _add_part(self, msg, part: str, value: np.ndarray) -> None:
        stamp_ns = nanoseconds_from_stamp(msg.header.stamp)
        parts = self._assembler.add(stamp_ns, part, value)
        if parts is None:
            return
        stamp_s = stamp_ns * 1e-9
        wrench = parts.get("wrench", np.zeros(6))
        state = RobotState(
            stamp_s=stamp_s,
            ee_position=parts["ee"],
            joint_positions=parts["joints"],
            ee_linear_speed=self._speed.update(stamp_s, parts["ee"]),
            force=wrench[:3],
            torque=wrench[3:],
        )
        refused = self.monitor.update_state(state)
        if refused is not None:
            self.get_logger().error(refused, throttle_duration_sec=2.0)
        elif self._robot_now is None or stamp_s > self._robot_now:
            self._robot_now = stamp_s
            if self.config.time_source == "robot":
                self._on_watchdog()

    def _on_status(self, msg: EpisodeStatus) -> None:
        """A new episode (a reset) is a jump in the EE position, not a speed: start over."""
        episode = int(msg.episode_index)
        if episode == self._episode:
            return
        self._episode = episode
        self._speed = SpeedEstimator()
        state = self.monitor.state
        if state is not None:
            self.monitor.state = dataclasses.replace(state, ee_linear_speed=0.0)
            self._speed.update(state.stamp_s, state.ee_position)

    # ------------------------------------------------------------------ commands
    def _now(self) -> float:
        if self.config.time_source == "robot":
            return self._robot_now if self._robot_now is not None else float("-inf")
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_command(self, msg: Action) -> None:
        stamp_s = seconds_from_stamp(msg.header.stamp)
        now = self._now()
        if self.config.time_source == "robot" and np.isfinite(stamp_s):
            # A command answers an observation, so robot time has reached its stamp even if
            # that state sample was lost (best effort): the state we hold is then one step old.
            now = max(now, stamp_s)
        decision = self.monitor.filter(msg.action, stamp_s, now)
        self._publish(decision, msg.header.stamp, msg.source)

    def _on_watchdog(self) -> None:
        now = self._now()
        if now - self._last_watchdog_hold < 0.5 / self.config.hold_rate_hz:
            return  # half a period: a timer firing a little early must not skip a hold
        decision = self.monitor.tick(now)
        if decision is not None:
            self._last_watchdog_hold = now
            self._publish(decision, stamp_from_seconds(now), "hold")

    def _publish(self, decision: SafetyDecision, stamp, source: str) -> None:
        out = Action(
            action=[float(v) for v in decision.action],
            source="hold" if decision.hold else source,
        )
        out.header.stamp = stamp
        self._out.publish(out)
        self.published += 1
        if decision.reasons and decision.reasons != self._last_reasons:
            # one call site per severity: rclpy refuses a throttled call site changing severity
            reasons = ", ".join(decision.reasons)
            if decision.hold:
                self.get_logger().warning(f"hold: {reasons}", throttle_duration_sec=1.0)
            else:
                self.get_logger().info(f"modified: {reasons}", throttle_duration_sec=1.0)
        self._last_reasons = decision.reasons
        self._holding = decision.hold

    # ------------------------------------------------------------------ e-stop
    def _estop(self, reason: str) -> None:
        latched_now = self.monitor.estop_reason is None
        self.monitor.estop(reason)
        if latched_now:
            self.get_logger().error(f"E-STOP latched: {self.monitor.estop_reason}")
            self._publish_estop_state()
            # hold at once on a robot: waiting for the next command or watchdog tick is too late
            if self.config.time_source == "wall":
                self._publish(self.monitor.hold("estop"), stamp_from_seconds(self._now()), "hold")

    def _on_estop_topic(self, msg: String) -> None:
        self._estop(msg.data or "e-stop topic")

    def _on_estop_service(self, _request: Trigger.Request, response: Trigger.Response):
        self._estop("e-stop service")
        response.success = True
        response.message = f"e-stop latched: {self.monitor.estop_reason}"
        return response

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response):
        was = self.monitor.estop_reason
        response.success = self.monitor.reset_estop()
        response.message = f"e-stop cleared (was: {was})" if was else "no e-stop was latched"
        if was:
            self.get_logger().warning(f"e-stop reset by operator (was: {was})")
            self._publish_estop_state()
        return response

    def _publish_estop_state(self) -> None:
        self._estopped.publish(Bool(data=self.monitor.estop_reason is not None))

    # ------------------------------------------------------------------ reporting
    def _publish_diagnostics(self) -> None:
        m = self.monitor
        if m.estop_reason is not None:
            level, message = DiagnosticStatus.ERROR, f"E-STOP latched: {m.estop_reason}"
        elif self._holding:
            level, message = DiagnosticStatus.WARN, f"holding: {', '.join(self._last_reasons)}"
        else:
            level, message = DiagnosticStatus.OK, "passing commands"
        values = [
            KeyValue(key="commands", value=str(m.commands)),
            KeyValue(key="published", value=str(self.published)),
            KeyValue(key="estop", value=str(m.estop_reason or "")),
            *(
                KeyValue(key=f"intervention: {reason}", value=str(count))
                for reason, count in sorted(m.interventions.items())
            ),
        ]
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: safety",
            message=message,
            hardware_id="safety_monitor",
            values=values,
        )
        out = DiagnosticArray(status=[status])
        out.header.stamp = stamp_from_seconds(time.time())
        self._diag.publish(out)


def main(args: list[str] | None = None) -> int:
    return run_node(SafetyMonitorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
