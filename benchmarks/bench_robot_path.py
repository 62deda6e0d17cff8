"""The robot command path: the safety monitor's added latency over ROS, and the Franka driver's
control rate and command-to-motion latency against franka-sim.

Usage: ``python benchmarks/bench_robot_path.py [--commands N] [--skip-ros] [--skip-driver]``
(needs ``bash scripts/setup_franka_sim.sh`` for the driver rows).

Rows:
- ``relay (baseline)``: /arbiter/command -> a bare rclpy relay process -> /robot/command, round
  trip from this process (two DDS hops, no rules): the in-run baseline;
- ``safety_monitor_node``: the same round trip through the safety monitor (wall time source,
  franka_tabletop limits, robot state streamed at 100 Hz from here); ``added`` = its p50/p99
  minus the relay's;
- ``driver: control loop``: cycles per second of the 1 kHz loop and libfranka's command success
  rate, over 5 s while tracking commands;
- ``driver: command -> motion``: from ``FrankaArm.send_delta`` to the first control cycle whose
  measured joint positions moved (1e-4 rad), 20 Hz commands.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RELAY = """
import rclpy
from pld_interfaces.msg import Action
from pld_nodes.ros import qos
rclpy.init()
node = rclpy.create_node("relay")
pub = node.create_publisher(Action, "/robot/command", qos.COMMAND)
node.create_subscription(Action, "/arbiter/command", pub.publish, qos.COMMAND)
try:
    rclpy.spin(node)
except BaseException:
    pass
"""


def round_trips(probe, n: int, period_s: float = 0.02) -> np.ndarray:
    """Publish n commands; seconds from publish to the matching /robot/command."""
    from geometry_msgs.msg import PoseStamped, WrenchStamped
    from sensor_msgs.msg import JointState

    from pld_interfaces.msg import Action
    from pld_nodes.core.observation import ARM_JOINT_NAMES
    from pld_nodes.ros import qos
    from pld_nodes.ros.conversions import (
        joint_state,
        nanoseconds_from_stamp,
        pose_stamped,
        stamp_from_seconds,
        wrench_stamped,
    )

    sent: dict[int, float] = {}
    got: dict[int, float] = {}

    def on_command(msg: Action) -> None:
        got.setdefault(nanoseconds_from_stamp(msg.header.stamp), time.perf_counter())

    probe.node.create_subscription(Action, "/robot/command", on_command, qos.STATE)
    cmd = probe.publisher(Action, "/arbiter/command", qos.COMMAND)
    pubs = (
        probe.publisher(PoseStamped, "/robot/ee_pose", qos.SENSOR),
        probe.publisher(JointState, "/robot/joint_states", qos.SENSOR),
        probe.publisher(WrenchStamped, "/robot/wrench", qos.SENSOR),
    )
    stop = threading.Event()

    def stream_state() -> None:
        home = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
        while not stop.wait(0.01):
            stamp = stamp_from_seconds(time.time())
            pubs[0].publish(pose_stamped([0.45, 0.0, 0.4], [1.0, 0, 0, 0], stamp, "base"))
            pubs[1].publish(joint_state(ARM_JOINT_NAMES, home, stamp))
            pubs[2].publish(wrench_stamped([0.0] * 6, stamp, "base"))

    threading.Thread(target=stream_state, daemon=True).start()
    probe.wait_for_subscribers(cmd, timeout_s=30.0)
    time.sleep(1.0)
    for k in range(n + 20):  # 20 warm-up commands
        msg = Action(action=[0.05, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0], source="base")
        msg.header.stamp = stamp_from_seconds(time.time())
        key = nanoseconds_from_stamp(msg.header.stamp)
        t0 = time.perf_counter()
        cmd.publish(msg)
        if k >= 20:
            sent[key] = t0
        time.sleep(period_s)
    time.sleep(0.5)
    stop.set()
    return np.array([got[k] - t for k, t in sent.items() if k in got])


def ros_rows(n: int) -> list[tuple[str, str, str, str]]:
    from pld_bringup import share_dir
    from pld_bringup.graph import NodeLaunch
    from pld_bringup.process_launcher import GraphLauncher
    from pld_bringup.testing import RosProbe, ros_environment

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(ros_environment(Path(tmp)))
        results = {}
        for domain, name in ((91, "relay (baseline)"), (92, "safety_monitor_node")):
            env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
            if name.startswith("relay"):
                proc = subprocess.Popen([sys.executable, "-c", RELAY], env=env)
                launcher = None
            else:
                files = (
                    share_dir() / "config/nodes/safety_monitor_robot.yaml",
                    share_dir() / "config/tasks/franka_tabletop.yaml",
                )
                launcher = GraphLauncher(
                    [NodeLaunch("safety_monitor", "pld_nodes", "safety_monitor_node",
                                parameter_files=files)],
                    env=env, sink=lambda _line: None,
                )  # fmt: skip
                launcher.start()
            probe = RosProbe(domain, name="bench_probe")
            try:
                results[name] = round_trips(probe, n) * 1e3
            finally:
                probe.close()
                if launcher is not None:
                    launcher.stop()
                else:
                    proc.terminate()
                    proc.wait(10)
        base = results["relay (baseline)"]
        for name, rtt in results.items():
            p50, p99 = np.percentile(rtt, 50), np.percentile(rtt, 99)
            added = (
                ""
                if rtt is base
                else f"+{p50 - np.percentile(base, 50):.2f} / +{p99 - np.percentile(base, 99):.2f}"
            )
            rows.append((name, f"{p50:.2f} ms", f"{p99:.2f} ms", added or f"n={len(rtt)}"))
    return rows


def driver_rows(n: int) -> list[tuple[str, str, str, str]]:
    from pld_bringup.franka_sim import FrankaSimServer
    from pld_nodes.core.franka.arm import FrankaArm
    from pld_nodes.core.franka.control import FrankaControlConfig

    with FrankaSimServer():
        arm = FrankaArm(FrankaControlConfig(robot_ip="127.0.0.1", realtime="ignore")).start()
        try:
            time.sleep(0.5)
            s0, t0 = arm.state(), time.monotonic()
            for k in range(n):
                sign = 1.0 if (k // 10) % 2 == 0 else -1.0  # 10 steps out, 10 back
                arm.send_delta(np.array([0.02 * sign, 0, 0, 0, 0, 0, -1.0]))
                time.sleep(0.05)
            s1, t1 = arm.state(), time.monotonic()
            time.sleep(0.3)
            arm.poll_events()
            lat = np.array([e[1] for e in arm.events if e[0] == "latency"])
        finally:
            arm.close()
    rate = (s1.cycles - s0.cycles) / (t1 - t0)
    return [
        ("driver: control loop", f"{rate:.0f} Hz", "", f"success rate {s1.success_rate:.3f}"),
        (
            "driver: command -> motion",
            f"{np.percentile(lat, 50) * 1e3:.2f} ms",
            f"{np.percentile(lat, 99) * 1e3:.2f} ms",
            f"n={len(lat)}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--skip-ros", action="store_true")
    parser.add_argument("--skip-driver", action="store_true")
    args = parser.parse_args()
    rows = []
    if not args.skip_ros:
        rows += ros_rows(args.commands)
    if not args.skip_driver:
        rows += driver_rows(args.commands)
    print(f"{'path':28s} {'p50':>10s} {'p99':>10s}  {'added (p50 / p99) or notes'}")
    for name, p50, p99, note in rows:
        print(f"{name:28s} {p50:>10s} {p99:>10s}  {note}")


if __name__ == "__main__":
    main()
