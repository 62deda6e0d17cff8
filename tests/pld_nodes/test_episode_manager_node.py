"""episode_manager over real ROS with an operator: start, stop, label, discard, set_mode."""

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from std_srvs.srv import Trigger

from pld_bringup.graph import NodeLaunch
from pld_interfaces.msg import ArbiterStep, EpisodeStatus
from pld_interfaces.srv import LabelEpisode, SetMode
from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.episode_manager_node import LIFECYCLE_QOS
from pld_nodes.ros import qos

from .test_recorder_node import recorder, wait, written

pytestmark = pytest.mark.ros
NS = "/episode_manager/"


def graph(store) -> list[NodeLaunch]:
    # residual mode with no residual node: every step holds after 0.1 s, so an operator has
    # time to stop an episode while it runs (30 steps ~ 3 s)
    sim = {"task": "lift", "camera_names": [], "step_mode": "lockstep", "reset_on_start": False,
           "max_steps": 30}  # fmt: skip
    vla = {"privileged_state": True, "execute_steps": 1, "backend": {"kind": "expert"}}
    arbiter = {"command_topic": "/robot/command", "residual_timeout_s": 0.1,
               "arbiter": {"mode": "residual"}}  # fmt: skip
    manager = {"mode": "residual", "auto_label": False, "episodes": 0}
    return [
        NodeLaunch("sim_bridge", "sim_bridge", "sim_bridge_node", overrides=sim),
        NodeLaunch("vla", "pld_nodes", "vla_node", overrides=vla),
        NodeLaunch("arbiter", "pld_nodes", "arbiter_node", overrides=arbiter),
        NodeLaunch("episode_manager", "pld_nodes", "episode_manager_node", overrides=manager),
        recorder(store),
    ]


def call(probe, srv, name, request=None):
    return probe.call(srv, NS + name, request or srv.Request(), timeout_s=30.0)


def test_operator_flow(tmp_path, launch_graph, ros_probe) -> None:
    lifecycle = ros_probe.subscribe(EpisodeStatus, "/episode/lifecycle", LIFECYCLE_QOS)
    steps = ros_probe.subscribe(ArbiterStep, "/arbiter/step", qos.STATE)
    diag = ros_probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    launch_graph(graph(tmp_path / "ep.zarr"))
    wait(lambda: written(diag) == 0, 60, "the recorder")
    # until the sim's reset service is up, a start is refused (never left hanging)
    deadline = time.monotonic() + 60
    while not ros_probe.node.count_publishers("/episode/status"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.0)

    # nothing to label or stop yet: refused with the reason, nothing changes
    assert not call(ros_probe, LabelEpisode, "label", LabelEpisode.Request(success=True)).accepted
    assert not call(ros_probe, Trigger, "stop").success

    # episode 1: stopped by the operator mid-episode, labelled a success
    assert call(ros_probe, Trigger, "start").success
    wait(lambda: len(steps.items) >= 5, 60, "steps")
    assert call(ros_probe, Trigger, "stop").success
    lifecycle.wait_for(lambda m: m.state == "awaiting_label", timeout_s=30)
    assert not call(ros_probe, Trigger, "start").success  # a label is owed first
    reply = call(ros_probe, LabelEpisode, "label", LabelEpisode.Request(success=True, source=""))
    assert reply.accepted
    first = lifecycle.wait_for(lambda m: m.state == "committed", timeout_s=30)[0]
    assert first.success and first.label_source == "operator" and first.reason == "stopped"
    assert not call(ros_probe, LabelEpisode, "label", LabelEpisode.Request(success=False)).accepted

    # episode 2: the operator switches the mode, then discards the episode
    assert call(ros_probe, SetMode, "set_mode", SetMode.Request(mode="base")).success
    assert not call(ros_probe, SetMode, "set_mode", SetMode.Request(mode="turbo")).success
    assert call(ros_probe, Trigger, "start").success
    second = lifecycle.wait_for(lambda m: m.state == "running" and m.mode == "base", timeout_s=30)[
        0
    ]
    wait(lambda: any(s.episode_index == second.episode_index for s in steps.items), 30, "steps")
    assert call(ros_probe, Trigger, "discard").success
    lifecycle.wait_for(lambda m: m.state == "discarded", timeout_s=30)
    base_steps = [s for s in steps.items if s.episode_index == second.episode_index]
    assert base_steps and all(s.mode == "base" and s.phase == 0 for s in base_steps)

    time.sleep(3.0)  # commit grace + background write
    store = EpisodeStore.open(tmp_path / "ep.zarr")
    assert store.n_episodes == 1  # the discarded episode is not recorded
    attrs = store.episode_attrs(0)
    assert attrs["success"] and attrs["label_source"] == "operator" and attrs["mode"] == "residual"
    assert store.episode_length(0) == first.step
