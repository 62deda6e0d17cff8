"""Bridge round trip over ROS vs. stepping the same env in-process.

    python benchmarks/bench_bridge_ros.py [--steps 200]

For each camera setup, the sim bridge runs in lockstep in its own process; this process sends a
command on /robot/command and waits for the complete next observation (state + every camera
frame, same stamp). The baseline steps the same env directly in this process. The table gives
steps/s, p50/p99 per step and the ROS overhead ratio.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import numpy as np

from pld_bringup.graph import NodeLaunch
from pld_bringup.probe import RosProbe
from pld_bringup.process_launcher import GraphLauncher
from pld_bringup.testing import ros_environment

SETUPS = {
    "no cameras": ((), 128),
    "2 cams 128²": (("agentview", "robot0_eye_in_hand"), 128),
    "2 cams 224²": (("agentview", "robot0_eye_in_hand"), 224),
}


def direct(cams: tuple[str, ...], size: int, steps: int) -> np.ndarray:
    from sim_bridge.envs import make_env

    env = make_env(
        "lift", camera_names=cams, image_size=(size, size), render=bool(cams), max_steps=steps + 10
    )
    env.reset(seed=0)
    action = np.zeros(7, np.float32)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        env.step(action)
        times.append(time.perf_counter() - t0)
    env.close()
    return np.asarray(times)


def over_ros(cams: tuple[str, ...], size: int, steps: int, domain: int) -> np.ndarray:
    from pld_interfaces.msg import Action
    from pld_nodes.ros import qos
    from pld_nodes.ros.robot_observer import RobotObserver

    params = {
        "task": "lift",
        "camera_names": list(cams),
        "image_height": size,
        "image_width": size,
        "step_mode": "lockstep",
        "max_steps": steps + 10,
    }
    node = NodeLaunch("sim_bridge", "sim_bridge", "sim_bridge_node", overrides=params)
    env = dict(os.environ) | {"ROS_DOMAIN_ID": str(domain)}
    with GraphLauncher([node], env=env, sink=lambda _line: None):
        probe = RosProbe(domain, name="bench_probe")
        try:
            got = threading.Event()
            RobotObserver(probe.node, lambda _obs: got.set(), cams, privileged_state=True)
            pub = probe.publisher(Action, "/robot/command", qos.COMMAND)
            if not got.wait(60.0):
                raise TimeoutError("no first observation from the bridge")
            probe.wait_for_subscribers(pub)
            times = []
            for _ in range(steps):
                got.clear()
                t0 = time.perf_counter()
                pub.publish(Action(action=[0.0] * 6 + [-1.0], source="bench"))
                if not got.wait(10.0):
                    raise TimeoutError("bridge stopped answering")
                times.append(time.perf_counter() - t0)
        finally:
            probe.close()
    return np.asarray(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--domain", type=int, default=77)
    opts = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.update(ros_environment(Path("/tmp/pld_bench")))
    rows = []
    for name, (cams, size) in SETUPS.items():
        base = direct(cams, size, opts.steps)
        ros = over_ros(cams, size, opts.steps, opts.domain)
        rows.append((name, base, ros))
    print(f"\nLift, lockstep, {opts.steps} steps per setup (ms per step)\n")
    print(
        "| setup | in-process steps/s | p50 | p99 | over ROS steps/s | p50 | p99 | ROS/in-process |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, base, ros in rows:
        print(
            f"| {name} | {1 / base.mean():.0f} | {1e3 * np.median(base):.1f} | "
            f"{1e3 * np.percentile(base, 99):.1f} | {1 / ros.mean():.0f} | "
            f"{1e3 * np.median(ros):.1f} | {1e3 * np.percentile(ros, 99):.1f} | "
            f"{ros.mean() / base.mean():.2f}x |"
        )


if __name__ == "__main__":
    main()
