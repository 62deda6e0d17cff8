"""vla_node in its own process between the real sim bridge and a test arbiter, over ROS."""

import time

import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState

from pld_bringup.graph import NodeLaunch
from pld_interfaces.msg import Action, ActionChunk, EpisodeStatus, StateVector
from pld_interfaces.srv import ResetEpisode
from pld_nodes.ros import qos

pytestmark = pytest.mark.ros


def graph(vla_overrides: dict) -> list[NodeLaunch]:
    sim = {
        "task": "lift",
        "camera_names": [],
        "step_mode": "lockstep",
        "publish_clock": True,
        "reset_on_start": False,
    }
    vla = {"privileged_state": True, "execute_steps": 1} | vla_overrides
    return [
        NodeLaunch("sim_bridge", "sim_bridge", "sim_bridge_node", overrides=sim),
        NodeLaunch("vla", "pld_nodes", "vla_node", overrides=vla),
    ]


def forward_base_actions(ros_probe) -> list[Action]:
    """Stand in for the arbiter: every base action becomes the robot command."""
    seen: list[Action] = []
    cmd = ros_probe.publisher(Action, "/robot/command", qos.COMMAND)

    def forward(msg: Action) -> None:
        seen.append(msg)
        cmd.publish(msg)

    ros_probe.node.create_subscription(Action, "/policy/base/action", forward, qos.COMMAND)
    return seen


def test_expert_backend_drives_an_episode_to_success(launch_graph, ros_probe) -> None:
    launch_graph(graph({"backend": {"kind": "expert", "task": "lift"}}))
    actions = forward_base_actions(ros_probe)
    chunks = ros_probe.subscribe(ActionChunk, "/policy/base/chunk", qos.STATE)
    status = ros_probe.subscribe(EpisodeStatus, "/episode/status", qos.LATCHED)
    reply = ros_probe.call(
        ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=4), timeout_s=60.0
    )
    assert reply.success
    done = status.wait_for(lambda m: m.state == "ended", timeout_s=120.0)[0]
    assert done.success and done.reason == "success"
    # One base action per observation (the one for the final observation is never executed),
    # each stamped with the sim time of the observation it answers (20 Hz steps).
    executed = actions[: done.step]
    assert len(executed) == done.step
    stamps = [a.header.stamp.sec + a.header.stamp.nanosec * 1e-9 for a in executed]
    # The reset takes one period: the episode's observations are at 0.05, 0.10, ...
    assert stamps == pytest.approx([0.05 * (k + 1) for k in range(done.step)], abs=1e-6)
    chunk = chunks.items[0]
    assert (chunk.horizon, chunk.action_dim, len(chunk.actions)) == (1, 7, 7)
    assert all(a.source == "base" for a in actions)


def test_new_episode_clears_the_chunk_and_restarts_the_policy(launch_graph, ros_probe) -> None:
    launch_graph(graph({"backend": {"kind": "expert", "task": "lift"}}))
    forward_base_actions(ros_probe)
    status = ros_probe.subscribe(EpisodeStatus, "/episode/status", qos.LATCHED)
    for seed in (1, 2):
        reply = ros_probe.call(
            ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=seed), timeout_s=60.0
        )
        index = reply.episode_index
        ended = status.wait_for(
            lambda m, i=index: m.episode_index == i and m.state == "ended", timeout_s=120.0
        )[0]
        assert ended.success, f"episode with seed {seed} failed: {ended.reason}"


def test_bad_backend_config_is_a_startup_error(launch_graph, caplog) -> None:
    launcher = launch_graph(
        [NodeLaunch("vla", "pld_nodes", "vla_node", overrides={"backend": {"kind": "builtin"}})]
    )
    assert launcher.wait(timeout_s=30.0) == 1
    assert "exit code 2 (configuration error)" in caplog.text
    assert "needs a checkpoint path" in caplog.text


def observation_publishers(ros_probe) -> dict:
    """Publishers of the robot topics a state-based vla_node assembles, once it listens."""
    pubs = {
        "joints": ros_probe.publisher(JointState, "/robot/joint_states", qos.SENSOR),
        "ee": ros_probe.publisher(PoseStamped, "/robot/ee_pose", qos.SENSOR),
        "objects": ros_probe.publisher(StateVector, "/sim/object_state", qos.SENSOR),
    }
    for pub in pubs.values():
        ros_probe.wait_for_subscribers(pub)
    return pubs


def publish_observation(ros_probe, pubs: dict, stamp_s: float, object_values: list[float]) -> None:
    """A hand-made robot observation (joint states, EE pose, object state) with one stamp."""
    from pld_nodes.core.observation import ARM_JOINT_NAMES, FINGER_JOINT_NAMES
    from pld_nodes.ros.conversions import joint_state, pose_stamped, stamp_from_seconds

    stamp = stamp_from_seconds(stamp_s)
    names = [f"cube/{f}" for f in ("x", "y", "z", "qx", "qy", "qz", "qw")]
    names = (names * 2)[: len(object_values)]
    pubs["joints"].publish(joint_state(ARM_JOINT_NAMES + FINGER_JOINT_NAMES, [0.0] * 9, stamp))
    pubs["ee"].publish(pose_stamped([0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], stamp, "world"))
    obj = StateVector(names=names, data=object_values)
    obj.header.stamp = stamp
    pubs["objects"].publish(obj)


def test_bad_observation_is_logged_and_the_node_keeps_running(launch_graph, ros_probe) -> None:
    lines: list[str] = []
    vla = {
        "backend": {"kind": "expert", "task": "lift"},
        "privileged_state": True,
        "execute_steps": 1,
        "instruction": "lift the red cube",  # no sim here to publish /task/instruction
    }
    launcher = launch_graph(
        [NodeLaunch("vla", "pld_nodes", "vla_node", overrides=vla)], sink=lines.append
    )
    pubs = observation_publishers(ros_probe)
    actions = ros_probe.subscribe(Action, "/policy/base/action", qos.COMMAND)
    cube = [0.0, 0.0, 0.82, 0.0, 0.0, 0.0, 1.0]
    stamp = iter(1.0 + 0.05 * k for k in range(10_000))

    def good_observation_gets_an_action(timeout_s: float = 30.0) -> None:
        # Best-effort sensor topics may drop the first samples after discovery: keep streaming.
        n = len(actions.items)
        deadline = time.monotonic() + timeout_s
        while len(actions.items) == n:
            assert time.monotonic() < deadline, "\n".join(lines)
            publish_observation(ros_probe, pubs, next(stamp), cube)
            time.sleep(0.1)

    good_observation_gets_an_action()
    for _ in range(3):
        publish_observation(ros_probe, pubs, next(stamp), cube + cube)  # wrong-size object state
        time.sleep(0.1)
    deadline = time.monotonic() + 20.0
    while not any("inference failed" in line and "object_state" in line for line in lines):
        assert time.monotonic() < deadline, "the bad observation was not reported"
        time.sleep(0.1)
    good_observation_gets_an_action()  # and the node still answers good ones
    assert launcher.running() == ["vla"]


def test_no_instruction_means_no_action(launch_graph, ros_probe) -> None:
    """A language-conditioned policy must not guess its task: it holds and says why."""
    lines: list[str] = []
    vla = {"backend": {"kind": "expert", "task": "lift"}, "privileged_state": True}
    launch_graph([NodeLaunch("vla", "pld_nodes", "vla_node", overrides=vla)], sink=lines.append)
    pubs = observation_publishers(ros_probe)
    actions = ros_probe.subscribe(Action, "/policy/base/action", qos.COMMAND)
    deadline = time.monotonic() + 20.0
    k = 0
    while not any("no instruction yet" in line for line in lines):
        assert time.monotonic() < deadline, "\n".join(lines)
        publish_observation(ros_probe, pubs, 1.0 + 0.05 * k, [0.0, 0.0, 0.82, 0, 0, 0, 1.0])
        k += 1
        time.sleep(0.1)
    assert actions.items == []
