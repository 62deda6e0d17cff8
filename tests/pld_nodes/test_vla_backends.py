"""vla_node with each model backend (builtin torch, ONNX Runtime, openpi server) over ROS.

A tiny checkpoint is trained here in a second; the node's first action for a seeded episode
must equal the in-process policy's first action for the same observation.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pld_bringup.graph import NodeLaunch
from pld_interfaces.msg import Action
from pld_interfaces.srv import ResetEpisode
from pld_nodes.core.policy.interface import PolicyObservation
from pld_nodes.ros import qos

pytestmark = pytest.mark.ros
SEED = 5


def pld_vla(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pld_nodes.tools.vla", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("vla")
    pld_vla("collect-demos", "--episodes", "3", "--out", str(work / "demos.zarr"))
    pld_vla(
        "train",
        "--store",
        str(work / "demos.zarr"),
        "--out",
        str(work / "run"),
        "--steps",
        "30",
        "--batch",
        "16",
    )
    ckpt = next((work / "run" / "checkpoints").iterdir())
    pld_vla("export-onnx", "--checkpoint", str(ckpt), "--out", str(work / "model.onnx"))
    return ckpt


@pytest.fixture(scope="module")
def expected_first_action(checkpoint: Path) -> np.ndarray:
    from pld_nodes.core.vla.policy import BuiltinVLAPolicy
    from sim_bridge.envs import make_env

    env = make_env("lift", render=False, privileged_state=True)
    obs, _ = env.reset(seed=SEED)
    env.close()
    policy = BuiltinVLAPolicy.from_checkpoint(checkpoint, device="cpu", num_threads=1)
    return policy.infer(
        PolicyObservation(
            proprio=obs["proprio"],
            instruction="lift the red cube",
            object_state=obs["object_state"],
        )
    )[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_base_action(launch_graph, ros_probe, backend: dict) -> np.ndarray:
    sim = {
        "task": "lift",
        "camera_names": [],
        "step_mode": "lockstep",
        "publish_clock": True,
        "reset_on_start": False,
    }
    vla = {"privileged_state": True, "execute_steps": 4, "backend": backend}
    launch_graph(
        [
            NodeLaunch("sim_bridge", "sim_bridge", "sim_bridge_node", overrides=sim),
            NodeLaunch("vla", "pld_nodes", "vla_node", overrides=vla),
        ]
    )
    actions = ros_probe.subscribe(Action, "/policy/base/action", qos.COMMAND)
    ros_probe.wait_for_publishers(actions, timeout_s=60.0)  # the one action must not be lost
    reply = ros_probe.call(
        ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=SEED), timeout_s=60.0
    )
    assert reply.success
    return np.asarray(actions.wait_for(timeout_s=60.0)[0].action)


def test_builtin_backend(launch_graph, ros_probe, checkpoint, expected_first_action) -> None:
    got = first_base_action(
        launch_graph, ros_probe, {"kind": "builtin", "checkpoint": str(checkpoint)}
    )
    np.testing.assert_allclose(got, expected_first_action, atol=1e-6)


def test_onnx_backend(launch_graph, ros_probe, checkpoint, expected_first_action) -> None:
    onnx = checkpoint.parent.parent.parent / "model.onnx"
    got = first_base_action(launch_graph, ros_probe, {"kind": "onnx", "checkpoint": str(onnx)})
    np.testing.assert_allclose(got, expected_first_action, atol=1e-4)


def test_openpi_backend_through_a_policy_server(
    launch_graph, ros_probe, checkpoint, expected_first_action
) -> None:
    port = free_port()
    env = dict(os.environ) | {"PLD_TEST_KEY": "s3cret"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pld_nodes.tools.vla",
            "serve",
            "--checkpoint",
            str(checkpoint),
            "--port",
            str(port),
            "--api-key-env",
            "PLD_TEST_KEY",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "policy server did not come up"
                time.sleep(0.2)
        os.environ["PLD_TEST_KEY"] = "s3cret"  # the vla node inherits the test's environment
        got = first_base_action(
            launch_graph, ros_probe, {"kind": "openpi", "port": port, "api_key_env": "PLD_TEST_KEY"}
        )
        np.testing.assert_allclose(got, expected_first_action, atol=1e-5)
    finally:
        os.environ.pop("PLD_TEST_KEY", None)
        server.terminate()
        server.wait(timeout=10)
        print("policy server output:\n", server.stdout.read()[-3000:])  # shown on failure
