"""sim_bridge_node in its own process, driven over real ROS topics and services."""

import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger

from pld_bringup.drive import EpisodeDriver, ExpertActions
from pld_bringup.graph import NodeLaunch
from pld_interfaces.msg import Action, EpisodeStatus, StateVector
from pld_interfaces.srv import ResetEpisode
from pld_nodes.ros import qos

pytestmark = pytest.mark.ros


def bridge_node(**overrides) -> list[NodeLaunch]:
    params = {
        "task": "lift",
        "camera_names": ["agentview"],
        "image_height": 64,
        "image_width": 96,
        "step_mode": "lockstep",
    } | overrides
    return [NodeLaunch("sim_bridge", "sim_bridge", "sim_bridge_node", overrides=params)]


def stamp_of(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def at_step(msg, k: int, period: float = 0.05) -> bool:
    """True if ``msg`` is stamped at sim time ``k * period`` (lockstep / sim-time mode)."""
    return abs(stamp_of(msg) - k * period) < 1e-9


def first_status(ros_probe, timeout_s: float = 60.0) -> EpisodeStatus:
    log = ros_probe.subscribe(EpisodeStatus, "/episode/status", qos.LATCHED)
    return log.wait_for(lambda m: m.state == "running", timeout_s=timeout_s)[0]


def send(ros_probe, pub, values, source="test") -> None:
    msg = Action(action=[float(v) for v in values], source=source)
    pub.publish(msg)


def test_scripted_episode_over_ros_succeeds(launch_graph, ros_probe) -> None:
    launch_graph(bridge_node(camera_names=["agentview", "robot0_eye_in_hand"]))
    first_status(ros_probe)
    driver = EpisodeDriver(
        ros_probe.node,
        ("agentview", "robot0_eye_in_hand"),
        ExpertActions("lift", seed=0),
        command_topic="/robot/command",  # the bridge alone: no safety monitor in this graph
    )
    record = driver.run_episode(ros_probe, seed=5, timeout_s=30.0)
    assert record.success and record.reason == "success"
    assert 10 < record.steps < 200
    assert record.seed == 5
    reply = ros_probe.call(Trigger, "/episode/check_success", Trigger.Request())
    assert reply.success is True


def test_images_and_state_share_stamps_and_are_well_formed(launch_graph, ros_probe) -> None:
    launch_graph(bridge_node(step_mode="realtime", control_rate_hz=10.0))
    images = ros_probe.subscribe(Image, "/cameras/agentview/image_raw", qos.SENSOR)
    infos = ros_probe.subscribe(CameraInfo, "/cameras/agentview/camera_info", qos.SENSOR)
    joints = ros_probe.subscribe(JointState, "/robot/joint_states", qos.SENSOR)
    ee = ros_probe.subscribe(PoseStamped, "/robot/ee_pose", qos.SENSOR)
    objects = ros_probe.subscribe(StateVector, "/sim/object_state", qos.SENSOR)
    image = images.wait_for(timeout_s=60.0, count=3)[-1]
    assert (image.encoding, image.height, image.width, image.step) == ("rgb8", 64, 96, 288)
    assert len(image.data) == 64 * 96 * 3
    assert image.header.frame_id == "agentview_optical_frame"
    info = infos.wait_for(lambda m: m.header.stamp == image.header.stamp)[0]
    fx, cx, fy, cy = info.k[0], info.k[2], info.k[4], info.k[5]
    assert fx == pytest.approx(fy) and fx > 0
    assert (cx, cy) == pytest.approx((47.5, 31.5))
    joint = joints.wait_for(lambda m: m.header.stamp == image.header.stamp)[0]
    assert list(joint.name[:7]) == [f"panda_joint{i}" for i in range(1, 8)]
    assert len(joint.position) == 9
    pose = ee.wait_for(lambda m: m.header.stamp == image.header.stamp)[0]
    q = pose.pose.orientation
    assert np.linalg.norm([q.x, q.y, q.z, q.w]) == pytest.approx(1.0, abs=1e-6)
    obj = objects.wait_for(lambda m: m.header.stamp == image.header.stamp)[0]
    assert len(obj.data) == 7


def test_bad_commands_are_refused_and_the_sim_holds(launch_graph, ros_probe) -> None:
    lines: list[str] = []
    launcher = launch_graph(bridge_node(camera_names=[]), sink=lines.append)
    first_status(ros_probe)
    status = ros_probe.subscribe(EpisodeStatus, "/episode/status", qos.LATCHED)
    pub = ros_probe.publisher(Action, "/robot/command", qos.COMMAND)
    ros_probe.wait_for_subscribers(pub)
    for bad in ([float("nan")] * 7, [0.1] * 6, [0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0]):
        send(ros_probe, pub, bad, source="fuzzer")
        time.sleep(0.2)
    time.sleep(0.5)
    assert all(m.step == 0 for m in status.items)  # lockstep: nothing was stepped
    refused = [line for line in lines if "refused command from 'fuzzer'" in line]
    assert refused and "non-finite" in refused[0]
    assert launcher.running() == ["sim_bridge"]
    send(ros_probe, pub, [0.0] * 6 + [-1.0])
    status.wait_for(lambda m: m.step == 1, timeout_s=10.0)


def test_reset_service_is_deterministic(launch_graph, ros_probe) -> None:
    launch_graph(bridge_node(camera_names=[], step_mode="realtime"))
    first_status(ros_probe)
    objects = ros_probe.subscribe(StateVector, "/sim/object_state", qos.SENSOR)
    poses = []
    for _ in range(2):
        reply = ros_probe.call(ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=7))
        assert reply.success and reply.seed == 7 and reply.instruction
        n = len(objects.items)
        msg = objects.wait_for(timeout_s=10.0, count=n + 1)[-1]
        poses.append(np.asarray(msg.data))
    np.testing.assert_allclose(poses[0], poses[1], atol=1e-6)
    reply = ros_probe.call(ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=-1))
    assert reply.success and reply.seed != 7


def test_realtime_mode_holds_without_commands(launch_graph, ros_probe) -> None:
    launch_graph(bridge_node(camera_names=[], step_mode="realtime", control_rate_hz=50.0))
    first_status(ros_probe)
    ee = ros_probe.subscribe(PoseStamped, "/robot/ee_pose", qos.SENSOR)
    msgs = ee.wait_for(timeout_s=30.0, count=40)
    first, last = msgs[0].pose.position, msgs[-1].pose.position
    moved = np.linalg.norm([last.x - first.x, last.y - first.y, last.z - first.z])
    assert moved < 0.01
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs]
    assert np.all(np.diff(stamps) > 0)


def test_unknown_task_is_a_clear_startup_error(launch_graph, caplog) -> None:
    launcher = launch_graph(bridge_node(task="no_such_task", camera_names=[]))
    assert launcher.wait(timeout_s=60.0) == 1
    assert "died: exit code 2 (configuration error)" in caplog.text
    assert "no_such_task" in caplog.text


def test_images_over_ros_equal_the_env_rendering(launch_graph, ros_probe) -> None:
    """Pixels survive the trip (and the renderer works on the node's executor thread)."""
    from pld_nodes.ros.conversions import image_from_msg
    from sim_bridge.envs import make_env

    launch_graph(bridge_node(camera_names=["agentview"], image_height=64, image_width=64))
    first_status(ros_probe)
    images = ros_probe.subscribe(Image, "/cameras/agentview/image_raw", qos.SENSOR)
    pub = ros_probe.publisher(Action, "/robot/command", qos.COMMAND)
    ros_probe.wait_for_subscribers(pub)
    reply = ros_probe.call(ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=3))
    assert reply.success
    actions = [[0.3, 0.0, -0.2, 0.0, 0.0, 0.0, -1.0], [0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 1.0]]
    received = []
    for k, action in enumerate(actions, start=1):
        send(ros_probe, pub, action)
        # Lockstep stamps are sim time: startup reset + service reset, then k steps of 1/20 s.
        msg = images.wait_for(lambda m, k=k: at_step(m, k + 2), timeout_s=20.0)[0]
        received.append(image_from_msg(msg))
    env = make_env("lift", camera_names=("agentview",), image_size=(64, 64), seed=0)
    env.reset(seed=3)
    expected = [env.step(np.asarray(a, np.float32))[0]["images"]["agentview"] for a in actions]
    env.close()
    for got, want in zip(received, expected, strict=True):
        assert got.mean() > 20.0  # a real scene, not a blank frame
        np.testing.assert_array_equal(got, want)


def test_sim_time_mode_publishes_clock_and_stamps_with_it(launch_graph, ros_probe) -> None:
    from rosgraph_msgs.msg import Clock

    launch_graph(bridge_node(camera_names=[], publish_clock=True, control_rate_hz=20.0))
    first_status(ros_probe)
    clock = ros_probe.subscribe(Clock, "/clock")
    joints = ros_probe.subscribe(JointState, "/robot/joint_states", qos.SENSOR)
    pub = ros_probe.publisher(Action, "/robot/command", qos.COMMAND)
    ros_probe.wait_for_subscribers(pub)
    reply = ros_probe.call(ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=1))
    assert reply.success
    for k in range(1, 4):
        send(ros_probe, pub, [0.0] * 6 + [-1.0])
        # Startup reset + service reset take one period each, then k steps of 1/20 s.
        joints.wait_for(lambda m, k=k: at_step(m, k + 2), timeout_s=10.0)
    later = [m for m in joints.items if stamp_of(m) > 5 * 0.05 + 1e-9]
    assert later == []  # no step without a command
    ticks = [c.clock.sec + c.clock.nanosec * 1e-9 for c in clock.wait_for(count=3)]
    assert ticks == sorted(ticks)


def test_lockstep_resends_the_observation_a_late_subscriber_missed(launch_graph, ros_probe) -> None:
    """A lost best-effort observation must not deadlock lockstep (sim waits for a command,
    the policy waits for the observation): while idle, the bridge re-sends it, same stamp."""
    launch_graph(bridge_node(camera_names=[], reset_on_start=False))
    ros_probe.call(ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=2), timeout_s=60.0)
    late = ros_probe.subscribe(JointState, "/robot/joint_states", qos.SENSOR)  # after the reset
    msgs = late.wait_for(timeout_s=5.0, count=2)
    assert all(at_step(m, 1) for m in msgs)  # the reset observation again, not a new step
