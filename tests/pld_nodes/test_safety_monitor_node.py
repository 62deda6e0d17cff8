"""safety_monitor_node in its own process, over ROS: the only path to /robot/command.

The rules themselves are tested without ROS (core/test_safety.py, property-based); here: the
node's wiring (robot state assembled by stamp, stamps kept, watchdog, e-stop topic/services,
diagnostics, limits from parameters) and that killing an upstream node (arbiter or VLA) in a
running graph leads to holds within the watchdog timeout.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, WrenchStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from pld_bringup import share_dir
from pld_bringup.graph import NodeLaunch
from pld_interfaces.msg import Action
from pld_interfaces.srv import ResetEpisode
from pld_nodes.core.observation import ARM_JOINT_NAMES
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import (
    joint_state,
    pose_stamped,
    seconds_from_stamp,
    stamp_from_seconds,
    wrench_stamped,
)

pytestmark = pytest.mark.ros

HOME = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
LIMITS = {
    "workspace_min": [0.3, -0.3, 0.02], "workspace_max": [0.7, 0.3, 0.5],
    "translation_scale_m": 0.05, "rotation_scale_rad": 0.5,
    "max_translation_per_step_m": 0.02, "max_rotation_per_step_rad": 0.1,
    "max_ee_speed_mps": 0.5,
    "joint_lower": [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973],
    "joint_upper": [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973],
    "joint_margin_rad": 0.05, "max_force_n": 30.0, "max_torque_nm": 10.0,
    "gripper_min": -1.0, "gripper_max": 0.8,
    "command_timeout_s": 0.5, "max_command_age_s": 0.25, "max_state_age_s": 0.2,
}  # fmt: skip


class FakeArm:
    """Publishes a resting arm's state (same stamp on every topic) at 50 Hz, wall-clock stamped."""

    def __init__(self, probe) -> None:
        self.force = 0.0
        self._pubs = (
            probe.publisher(PoseStamped, "/robot/ee_pose", qos.SENSOR),
            probe.publisher(JointState, "/robot/joint_states", qos.SENSOR),
            probe.publisher(WrenchStamped, "/robot/wrench", qos.SENSOR),
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ee, joints, wrench = self._pubs
        while not self._stop.wait(0.02):
            stamp = stamp_from_seconds(time.time())
            ee.publish(pose_stamped([0.5, 0.0, 0.2], [1.0, 0.0, 0.0, 0.0], stamp, "base"))
            joints.publish(joint_state(ARM_JOINT_NAMES, HOME, stamp))
            wrench.publish(wrench_stamped([self.force, 0, 0, 0, 0, 0], stamp, "ee"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def monitor_node(**overrides) -> NodeLaunch:
    params = {"time_source": "wall", "hold_rate_hz": 20.0, "safety": LIMITS} | overrides
    return NodeLaunch("safety_monitor", "pld_nodes", "safety_monitor_node", overrides=params)


def values(msg: Action) -> np.ndarray:
    return np.asarray(msg.action)


def test_commands_are_made_safe_held_and_estopped(launch_graph, ros_probe) -> None:
    lines: list[str] = []
    launch_graph([monitor_node()], sink=lines.append)
    out = ros_probe.subscribe(Action, "/robot/command", qos.STATE)
    diag = ros_probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    estopped = ros_probe.subscribe(Bool, "/safety/estopped", qos.LATCHED)
    cmd = ros_probe.publisher(Action, "/arbiter/command", qos.COMMAND)
    estop_topic = ros_probe.publisher(String, "/safety/estop", 10)
    arm = FakeArm(ros_probe)
    try:
        ros_probe.wait_for_subscribers(cmd, timeout_s=30.0)
        ros_probe.wait_for_publishers(out, timeout_s=30.0)

        def send(action, age_s: float = 0.0) -> Action:
            """Publish a candidate; return the monitor's answer for that stamp."""
            msg = Action(action=[float(v) for v in action], source="base+residual")
            msg.header.stamp = stamp_from_seconds(time.time() - age_s)
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            cmd.publish(msg)
            stamp_of = lambda m: (m.header.stamp.sec, m.header.stamp.nanosec)  # noqa: E731
            return out.wait_for(lambda m: stamp_of(m) == key, timeout_s=10.0)[0]

        # a state must have arrived before anything passes: retry the first command
        deadline = time.monotonic() + 20.0
        while True:
            first = send([0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5])
            if first.source != "hold":
                break
            assert time.monotonic() < deadline, "\n".join(lines[-20:])
            time.sleep(0.1)
        assert first.source == "base+residual"
        np.testing.assert_allclose(values(first), [0.1, 0, 0, 0, 0, 0, 0.5], atol=1e-12)

        capped = send([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # 5 cm > the 2 cm cap; gripper > 0.8
        np.testing.assert_allclose(values(capped), [0.4, 0, 0, 0, 0, 0, 0.8], atol=1e-12)

        for bad in ([float("nan")] * 7, [0.1] * 6, [5.0] * 7):
            held = send(bad)
            assert held.source == "hold" and np.all(values(held)[:6] == 0.0)
            assert values(held)[6] == 0.8  # the gripper stays where it was last sent
        assert send([0.1] * 7, age_s=1.0).source == "hold"  # stale stamp

        arm.force = 50.0  # a collision: hold while it lasts
        time.sleep(0.2)
        assert send([0.1] * 7).source == "hold"
        arm.force = 0.0
        time.sleep(0.2)
        assert send([0.1] * 7).source != "hold"

        # watchdog: commands stop -> holds within command_timeout_s
        last = time.time()
        n = len(out.items)
        first_hold = out.wait_for(
            lambda m: m.source == "hold" and seconds_from_stamp(m.header.stamp) > last,
            timeout_s=5.0,
        )[0]
        waited = seconds_from_stamp(first_hold.header.stamp) - last
        assert 0.45 <= waited <= 0.5 + 0.05 + 0.15, waited  # timeout + one hold period + slack
        time.sleep(0.5)
        assert len(out.items) - n >= 8  # ~20 Hz of holds while nothing comes

        # e-stop from the topic: latched, every command held until the reset service
        estop_topic.publish(String(data="operator pressed stop"))
        estopped.wait_for(lambda m: m.data, timeout_s=10.0)
        for _ in range(3):
            assert send([0.1] * 7).source == "hold"
            time.sleep(0.2)
        reply = ros_probe.call(Trigger, "/safety/reset", Trigger.Request(), timeout_s=10.0)
        assert reply.success and "operator pressed stop" in reply.message
        estopped.wait_for(lambda m: not m.data, timeout_s=10.0)
        assert send([0.1] * 7).source != "hold"

        # e-stop from the service works the same way
        assert ros_probe.call(Trigger, "/safety/estop", Trigger.Request(), timeout_s=10.0).success
        assert send([0.1] * 7).source == "hold"
        assert ros_probe.call(Trigger, "/safety/reset", Trigger.Request(), timeout_s=10.0).success
        assert send([0.1] * 7).source != "hold"

        # every intervention is reported, by reason
        def counts() -> dict[str, int]:
            for array in reversed(diag.items):
                for status in array.status:
                    if status.hardware_id == "safety_monitor":
                        return {
                            kv.key.removeprefix("intervention: "): int(kv.value)
                            for kv in status.values
                            if kv.key.startswith("intervention: ")
                        }
            return {}

        deadline = time.monotonic() + 10.0
        expected = {
            "translation step cap", "gripper range", "command non-finite",
            "command wrong shape", "command out of range", "stale command",
            "external force", "no fresh command", "estop", "estop latched",
        }  # fmt: skip
        while not (expected <= counts().keys() and counts()["estop latched"] == 2):
            assert time.monotonic() < deadline, counts()
            time.sleep(0.2)
    finally:
        arm.close()
        print("\n".join(lines[-40:]))  # the node's log, shown on failure


def test_missing_limits_stop_the_node_at_startup(launch_graph) -> None:
    limits = dict(LIMITS)
    del limits["max_force_n"]
    lines: list[str] = []
    graph = launch_graph([monitor_node(safety=limits)], sink=lines.append)
    deadline = time.monotonic() + 60
    while graph.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    ended = graph.poll()
    assert ended and ended[0].returncode == 2
    assert any("safety.max_force_n" in line for line in lines), lines[-10:]


@pytest.mark.parametrize("victim", ["arbiter", "vla"])
def test_an_upstream_crash_leads_to_holds_within_the_watchdog_timeout(
    victim, launch_graph, ros_probe
) -> None:
    """Realtime sim + expert 'VLA' + arbiter + safety monitor (the shipped sim config and Lift
    limits): kill -9 the arbiter or the VLA mid-episode; the robot must be sent holds within
    command_timeout_s (0.5 s in config/tasks/lift.yaml) of the last command."""
    share = share_dir()
    sim = {"task": "lift", "camera_names": [], "step_mode": "realtime", "max_steps": 2000,
           "reset_on_start": False}  # fmt: skip
    vla = {"privileged_state": True, "execute_steps": 1,
           "backend": {"kind": "expert", "task": "lift"}}  # fmt: skip
    files = (
        share / "config/nodes/safety_monitor_sim.yaml",
        share / "config/tasks/lift.yaml",
    )
    lines: list[str] = []
    graph = launch_graph(
        [
            NodeLaunch("sim_bridge", "sim_bridge", "sim_bridge_node", overrides=sim),
            NodeLaunch("vla", "pld_nodes", "vla_node", overrides=vla),
            NodeLaunch(
                "arbiter", "pld_nodes", "arbiter_node", overrides={"arbiter": {"mode": "base"}}
            ),
            NodeLaunch("safety_monitor", "pld_nodes", "safety_monitor_node", parameter_files=files),
        ],
        sink=lines.append,
    )
    out = ros_probe.subscribe(Action, "/robot/command", qos.STATE)
    ros_probe.wait_for_publishers(out, timeout_s=60.0)
    reply = ros_probe.call(
        ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=3), timeout_s=60.0
    )
    assert reply.success
    try:
        out.wait_for(lambda m: m.source == "base", timeout_s=60.0, count=5)  # the policy acts
    finally:
        print("\n".join(lines[-60:]))
    os.kill(graph.pid(victim), signal.SIGKILL)
    killed = time.time()
    first_hold = out.wait_for(
        lambda m: m.source == "hold" and seconds_from_stamp(m.header.stamp) > killed - 0.1,
        timeout_s=10.0,
    )[0]
    last_command = max(seconds_from_stamp(m.header.stamp) for m in out.items if m.source == "base")
    gap = seconds_from_stamp(first_hold.header.stamp) - last_command
    # the timeout, plus one sim step (holds follow robot time, 20 Hz) and scheduling slack
    print(f"{victim} killed: first hold {gap:.3f} s after the last command")  # for docs
    assert 0.45 <= gap <= 0.5 + 0.05 + 0.25, gap
    assert time.time() - killed < 2.0
    time.sleep(1.0)
    recent = [m for m in out.items if seconds_from_stamp(m.header.stamp) > killed + 0.6]
    assert recent and all(m.source == "hold" for m in recent)
