"""franka_driver_node against franka-sim (the libfranka wire protocol on MuJoCo, its own venv and
process) through pylibfranka: connects, streams state over ROS, follows safe EE-delta commands,
holds when they stop, recovers automatically from a provoked reflex and reports it, and shuts
down cleanly. Plus the driver core (kinematics, tracker, control loop) against the same sim."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import psutil
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from pld_bringup.graph import NodeLaunch
from pld_interfaces.msg import Action, EpisodeStatus
from pld_interfaces.srv import ResetEpisode
from pld_nodes.core.franka.arm import FrankaArm
from pld_nodes.core.franka.control import FrankaControlConfig
from pld_nodes.core.franka.kinematics import jacobian_at, joint_frames
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import stamp_from_seconds

pytestmark = pytest.mark.franka_sim
SIM_CONTROL = {"robot_ip": "127.0.0.1", "realtime": "ignore"}
STEP = 0.04  # normalised: 2 mm per command at translation_scale_m 0.05


def position(msg: PoseStamped) -> np.ndarray:
    p = msg.pose.position
    return np.array([p.x, p.y, p.z])


def diag_values(log) -> dict[str, str]:
    for array in reversed(log.items):
        for status in array.status:
            if status.hardware_id == "franka":
                return {kv.key: kv.value for kv in status.values}
    return {}


def control_process(driver_pid: int) -> psutil.Process:
    """The driver's 1 kHz control process (a spawn child; not the resource tracker)."""
    for child in psutil.Process(driver_pid).children():
        cmdline = " ".join(child.cmdline())
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            return child
    raise AssertionError("no control process found")


def test_kinematics_agree_with_libfranka_model(franka_sim) -> None:
    """Our FR3 chain reproduces the robot's own O_T_EE and libfranka's zero Jacobian."""
    import pylibfranka as pf

    robot = pf.Robot("127.0.0.1", pf.RealtimeConfig.kIgnore)
    try:
        state = robot.read_once()
        q = np.asarray(state.q)
        o_t_ee = np.asarray(state.O_T_EE).reshape(4, 4, order="F")
        np.testing.assert_allclose(joint_frames(q)[-1], o_t_ee, atol=2e-3)  # sim: link-7 origin
        flange = joint_frames(q)[-1][:3, 3] + o_t_ee[:3, 2] * 0.107  # libfranka's J: the flange
        model_jacobian = np.asarray(robot.load_model().zero_jacobian(state)).reshape(
            6, 7, order="F"
        )
        np.testing.assert_allclose(jacobian_at(q, flange), model_jacobian, atol=2e-3)
    finally:
        del robot


def test_control_loop_follows_deltas_holds_and_recovers(franka_sim) -> None:
    arm = FrankaArm(FrankaControlConfig(**SIM_CONTROL)).start()
    try:
        time.sleep(0.3)
        s0 = arm.state()
        assert s0.control_state_name == "controlling" and s0.cycles > 100
        p0 = s0.ee_pose[:3, 3].copy()
        for _ in range(10):
            arm.send_delta(np.array([STEP, 0, 0, 0, 0, 0, -1.0]))
            time.sleep(0.05)
        time.sleep(1.0)
        p1 = arm.state().ee_pose[:3, 3]
        np.testing.assert_allclose(p1 - p0, [0.02, 0.0, 0.0], atol=1e-3)
        time.sleep(1.0)  # no commands: holds
        np.testing.assert_allclose(arm.state().ee_pose[:3, 3], p1, atol=2e-4)
        os.kill(arm._process.pid, signal.SIGSTOP)  # a 60 ms stall: the robot aborts the motion
        time.sleep(0.06)
        os.kill(arm._process.pid, signal.SIGCONT)
        assert "communication_constraints_violation" in arm.wait_for_event("reflex", 5.0)[1]
        arm.wait_for_event("recovered", 5.0)
        time.sleep(0.3)
        assert arm.state().control_state_name == "controlling"
        p2 = arm.state().ee_pose[:3, 3].copy()
        for _ in range(5):
            arm.send_delta(np.array([0, STEP, 0, 0, 0, 0, -1.0]))
            time.sleep(0.05)
        time.sleep(1.0)
        np.testing.assert_allclose(arm.state().ee_pose[:3, 3] - p2, [0, 0.01, 0], atol=1e-3)
        lat = [e[1] for e in arm.events if e[0] == "latency"]
        assert lat and np.median(lat) < 0.02  # command -> measured motion
    finally:
        assert arm.close() == 0


@pytest.mark.ros
def test_driver_node_over_ros(franka_sim, launch_graph, ros_probe) -> None:
    lines: list[str] = []
    overrides = {"control": SIM_CONTROL, "publish_rate_hz": 50.0, "max_steps": 10_000,
                 "instruction": "lift the red cube"}  # fmt: skip
    graph = launch_graph(
        [NodeLaunch("franka_driver", "pld_nodes", "franka_driver_node", overrides=overrides)],
        sink=lines.append,
    )
    ee = ros_probe.subscribe(PoseStamped, "/robot/ee_pose", qos.SENSOR_RECORDING)
    joints = ros_probe.subscribe(JointState, "/robot/joint_states", qos.SENSOR_RECORDING)
    mode = ros_probe.subscribe(String, "/robot/mode", qos.LATCHED)
    status = ros_probe.subscribe(EpisodeStatus, "/episode/status", qos.EPISODE_STATUS)
    diag = ros_probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    cmd = ros_probe.publisher(Action, "/robot/command", qos.COMMAND)
    try:
        ee.wait_for(timeout_s=60.0, count=5)
        first = joints.wait_for(timeout_s=10.0)[0]
        assert len(first.name) == 9  # 7 arm joints + 2 fingers, as the sim bridge
        stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in ee.items}
        assert any((m.header.stamp.sec, m.header.stamp.nanosec) in stamps for m in joints.items)
        mode.wait_for(lambda m: m.data.endswith("/controlling"), timeout_s=10.0)

        reply = ros_probe.call(ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=7),
                               timeout_s=60.0)  # fmt: skip
        assert reply.success, reply.message
        status.wait_for(lambda m: m.state == "running" and m.step > 3, timeout_s=10.0)
        ros_probe.wait_for_subscribers(cmd, timeout_s=10.0)

        def latest() -> np.ndarray:
            return position(ee.items[-1])

        time.sleep(0.3)
        p0 = latest()
        for _ in range(10):
            msg = Action(action=[STEP, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0], source="base")
            msg.header.stamp = stamp_from_seconds(time.time())
            cmd.publish(msg)
            time.sleep(0.05)
        time.sleep(1.0)
        p1 = latest()
        if np.abs(p1 - p0 - [0.02, 0, 0]).max() > 1.5e-3:
            time.sleep(1.2)
            print(
                "DEBUG",
                diag_values(diag),
                p0,
                p1,
                latest(),
                len(ee.items),
                cmd.get_subscription_count(),
            )
        np.testing.assert_allclose(
            p1 - p0, [0.02, 0.0, 0.0], atol=1.5e-3, err_msg=str(diag_values(diag))
        )  # commands stopped 2 s ago: the arm holds
        np.testing.assert_allclose(latest(), p1, atol=3e-4)

        for service in ("homing", "open"):  # the hand, in its own process
            reply = ros_probe.call(Trigger, f"/robot/gripper/{service}", Trigger.Request(),
                                   timeout_s=30.0)  # fmt: skip
            assert reply.success, (service, reply.message)
        width = ros_probe.subscribe(JointState, "/robot/gripper", qos.SENSOR_RECORDING)
        assert width.wait_for(timeout_s=10.0)[0].position[0] == pytest.approx(0.08, abs=1e-3)

        bad = Action(action=[float("nan")] * 7, source="base")  # dropped, counted, no motion
        cmd.publish(bad)

        victim = control_process(graph.pid("franka_driver"))
        victim.suspend()  # a stalled control process: the robot aborts with a reflex
        time.sleep(0.06)
        victim.resume()
        deadline = time.monotonic() + 15.0
        while not (int(diag_values(diag).get("recoveries", "0")) >= 1):
            assert time.monotonic() < deadline, (diag_values(diag), lines[-20:])
            time.sleep(0.2)
        values = diag_values(diag)
        assert int(values["reflexes"]) >= 1 and int(values["dropped commands"]) >= 1
        assert any("reflex" in line for line in lines)
        mode.wait_for(lambda m: m.data.endswith("/controlling"), timeout_s=10.0)
        assert float(values["control_rate_hz"]) > 500.0
    finally:
        codes = graph.stop()
        print("\n".join(lines[-40:]))
    assert codes.get("franka_driver") == 0
    assert not psutil.pid_exists(victim.pid) or victim.status() == psutil.STATUS_ZOMBIE
