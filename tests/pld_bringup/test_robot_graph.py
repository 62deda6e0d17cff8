"""The workstation graph (graphs/robot.yaml, robot.launch.py) on franka-sim: driver, safety
monitor, arbiter, episode manager and recorder exactly as shipped, with this test standing in
for the VLA (it answers every observation with a base action of the same stamp). Proves the
whole command path to the arm: status -> base action -> arbiter -> safety monitor -> driver ->
motion, with the task YAML's per-step cap applied, and that a latched e-stop stops the arm while
the policy keeps proposing motion, until the operator resets it."""

from __future__ import annotations

import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from std_srvs.srv import Trigger

from pld_bringup import find_graph, share_dir
from pld_interfaces.msg import Action, EpisodeStatus
from pld_interfaces.srv import ResetEpisode
from pld_nodes.ros import qos

pytestmark = [pytest.mark.ros, pytest.mark.franka_sim]


def test_robot_graph_moves_the_arm_only_through_the_safety_monitor(
    franka_sim, launch_graph, ros_probe, tmp_path
) -> None:
    args = {"robot_ip": "127.0.0.1", "realtime": "ignore", "policies": "false",
            "store": str(tmp_path / "episodes.zarr")}  # fmt: skip
    nodes = [n for n in find_graph("robot").resolve(args, share_dir()) if n.name != "learner"]
    lines: list[str] = []
    launch_graph(nodes, sink=lines.append)
    proposal = {"action": [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0]}  # 5 mm/step toward +x
    base = ros_probe.publisher(Action, "/policy/base/action", qos.COMMAND)

    def answer(status: EpisodeStatus) -> None:  # the "VLA": one action per observation
        if status.state == "running":
            msg = Action(action=proposal["action"], source="base")
            msg.header.stamp = status.header.stamp
            base.publish(msg)

    ros_probe.node.create_subscription(EpisodeStatus, "/episode/status", answer, qos.EPISODE_STATUS)
    ee = ros_probe.subscribe(PoseStamped, "/robot/ee_pose", qos.SENSOR_RECORDING)
    sent = ros_probe.subscribe(Action, "/robot/command", qos.STATE)
    try:
        ros_probe.wait_for_publishers(ee, timeout_s=90.0)
        ros_probe.wait_for_subscribers(base, timeout_s=60.0)
        ros_probe.wait_for_publishers(sent, timeout_s=60.0)
        reply = ros_probe.call(ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=1),
                               timeout_s=60.0)  # fmt: skip
        assert reply.success, reply.message

        def x() -> float:
            return ee.items[-1].pose.position.x

        sent.wait_for(lambda m: m.source == "base", timeout_s=20.0, count=10)
        x0 = x()
        time.sleep(1.0)
        moved = x() - x0
        assert 0.06 < moved < 0.12, moved  # ~20 steps x 5 mm

        n = len(sent.items)
        proposal["action"] = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0]  # 5 cm: the cap is 1 cm
        time.sleep(0.5)
        passed = [m.action[0] for m in sent.items[n:] if m.source == "base"]
        assert passed and max(passed) <= 0.2 + 1e-6  # (holds: the EE speed rule, 0.3 m/s)
        assert any(abs(a - 0.2) < 1e-6 for a in passed)  # capped, not refused

        proposal["action"] = [0.0, 0.1, 0.0, 0.0, 0.0, 0.0, -1.0]
        assert ros_probe.call(Trigger, "/safety/estop", Trigger.Request(), timeout_s=10.0).success
        time.sleep(0.5)  # the arm decelerates
        y_stop = ee.items[-1].pose.position.y
        time.sleep(1.0)
        assert abs(ee.items[-1].pose.position.y - y_stop) < 1e-3  # stopped while e-stopped
        assert all(m.source == "hold" for m in sent.items[-10:])
        refused = ros_probe.call(ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=2),
                                 timeout_s=10.0)  # fmt: skip
        assert not refused.success and "e-stop" in refused.message  # homing would bypass it
        assert ros_probe.call(Trigger, "/safety/reset", Trigger.Request(), timeout_s=10.0).success
        time.sleep(1.0)
        assert ee.items[-1].pose.position.y - y_stop > 0.02  # moving again after the reset
        ends = np.array([m.pose.position.x for m in ee.items[-5:]])
        assert np.all(ends <= 0.75 + 1e-3)  # never outside the workspace box
    finally:
        print("\n".join(lines[-40:]))
