"""The standalone ``pld-operator-panel``: its own process and rclpy node, clean exit on SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.ros


def test_standalone_app_joins_the_graph_and_exits_cleanly_on_sigint(ros_probe, ros_domain) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ROS_DOMAIN_ID=str(ros_domain))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pld_operator_panel.app", "--domain-id", str(ros_domain)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "operator_panel" not in ros_probe.node.get_node_names():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the panel's node never joined the graph"
            time.sleep(0.2)
        # it offers the e-stop as a topic publisher the moment it is up
        while ros_probe.node.count_publishers("/safety/estop") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
