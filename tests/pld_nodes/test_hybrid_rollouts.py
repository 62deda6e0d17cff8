"""Hybrid rollouts over real ROS: sim bridge + shipped base VLA + residual + arbiter + episode
manager + recorder, 20 episodes back to back, unattended, recorded to a real Zarr store."""

import time

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from scipy import stats

from pld_bringup.graph import NodeLaunch
from pld_interfaces.msg import ArbiterStep, EpisodeStatus
from pld_nodes.core.arbiter import Arbiter, ArbiterConfig
from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.residual.checkpoint import actor_to_bytes
from pld_nodes.core.residual.config import ResidualPolicyConfig
from pld_nodes.core.residual.networks import ObservationLayout, ResidualActor
from pld_nodes.episode_manager_node import LIFECYCLE_QOS
from pld_nodes.ros import qos

pytestmark = pytest.mark.ros
EPISODES, T_MAX, ALPHA, XI, SEED = 20, 80, 0.6, 0.5, 11
RESIDUAL = np.tanh(0.2)


def residual_weights(path) -> str:
    """A recognisable residual: a constant tanh(0.2) on every dimension."""
    actor = ResidualActor(ObservationLayout(state_dim=23), ResidualPolicyConfig())
    with torch.no_grad():
        actor.trunk[-1].bias[:7] = 0.2
    path.write_bytes(actor_to_bytes(actor, version=3, xi=XI))
    return str(path)


def graph(tmp_path) -> list[NodeLaunch]:
    sim = {"task": "lift", "camera_names": [], "step_mode": "lockstep", "reset_on_start": False,
           "max_steps": T_MAX}  # fmt: skip
    vla = {
        "privileged_state": True,
        "backend": {"kind": "builtin", "checkpoint": "shipped:lift_flow"},
    }
    residual = {
        "weights_file": residual_weights(tmp_path / "actor.safetensors"),
        "stochastic": False,
    }
    arbiter = {
        "command_topic": "/robot/command",
        "arbiter": {"mode": "hybrid", "alpha": ALPHA, "t_max": T_MAX, "xi": XI, "seed": SEED},
    }
    manager = {"mode": "hybrid", "episodes": EPISODES, "seed": 500, "task": "lift",
               "start_delay_s": 6.0}  # fmt: skip
    recorder = {"store_path": str(tmp_path / "episodes.zarr"), "privileged_state": True}
    return [
        NodeLaunch("sim_bridge", "sim_bridge", "sim_bridge_node", overrides=sim),
        NodeLaunch("vla", "pld_nodes", "vla_node", overrides=vla),
        NodeLaunch("residual", "pld_nodes", "residual_node", overrides=residual),
        NodeLaunch("arbiter", "pld_nodes", "arbiter_node", overrides=arbiter),
        NodeLaunch("recorder", "pld_nodes", "recorder_node", overrides=recorder),
        NodeLaunch("episode_manager", "pld_nodes", "episode_manager_node", overrides=manager),
    ]


def recorder_stats(diag) -> dict:
    for arr in reversed(diag.items):
        for s in arr.status:
            if s.hardware_id == "recorder":
                return {kv.key: kv.value for kv in s.values}
    return {}


def test_twenty_hybrid_episodes_are_run_and_recorded_exactly(tmp_path, launch_graph, ros_probe):
    steps = ros_probe.subscribe(ArbiterStep, "/arbiter/step", qos.STATE)
    lifecycle = ros_probe.subscribe(EpisodeStatus, "/episode/lifecycle", LIFECYCLE_QOS)
    diag = ros_probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    launch_graph(graph(tmp_path))
    lifecycle.wait_for(lambda m: m.state == "committed", count=EPISODES, timeout_s=280.0)
    deadline = time.monotonic() + 30
    while recorder_stats(diag).get("written") != str(EPISODES):
        assert time.monotonic() < deadline, f"recorder: {recorder_stats(diag)}"
        time.sleep(0.2)

    store = EpisodeStore.open(tmp_path / "episodes.zarr")
    assert store.n_episodes == EPISODES
    published: dict[int, list[ArbiterStep]] = {}
    for s in steps.items:
        published.setdefault(int(s.episode_index), []).append(s)
    committed = {int(m.episode_index): m for m in lifecycle.items if m.state == "committed"}
    reference = Arbiter(ArbiterConfig(mode="hybrid", alpha=ALPHA, t_max=T_MAX, seed=SEED))
    t_bases = []
    for i in range(store.n_episodes):
        attrs = store.episode_attrs(i)
        ep = store.get_episode(i)
        index = attrs["episode_index"]
        executed = committed[index].step  # steps the env executed
        pub = [p for p in published[index] if p.step < executed]
        assert len(published[index]) == len(pub)  # nothing decided for the terminal observation
        # the store holds exactly the published steps, in order, with their stamps
        assert store.episode_length(i) == len(pub) and attrs["missing_observations"] == 0
        np.testing.assert_array_equal(ep["step"], np.arange(len(pub)))
        stamps = [p.header.stamp.sec + p.header.stamp.nanosec * 1e-9 for p in pub]
        np.testing.assert_allclose(ep["stamp"], stamps, atol=1e-9)
        np.testing.assert_allclose(ep["action"], [p.action for p in pub], atol=1e-7)
        # sim-labelled success, reward on the last step only
        assert attrs["success"] == committed[index].success and attrs["label_source"] in (
            "sim",
            "timeout",
        )
        assert ep["reward"].sum() == float(attrs["success"])
        # T_base: the configured per-episode draw; phases switch exactly there
        t_base = attrs["t_base"]
        assert t_base == reference.start_episode(index).t_base
        t_bases.append(t_base)
        expected_phase = (np.arange(len(pub)) >= t_base).astype(np.int8)
        np.testing.assert_array_equal(ep["phase"], expected_phase)
        base_phase = ep["phase"] == 0
        np.testing.assert_array_equal(ep["action"][base_phase], ep["base_action"][base_phase])
        assert np.all(ep["residual_action"][base_phase] == 0)
        res = ep["phase"] == 1
        np.testing.assert_allclose(ep["residual_action"][res], RESIDUAL, atol=1e-5)
        np.testing.assert_allclose(
            ep["action"][res], np.clip(ep["base_action"][res] + XI * RESIDUAL, -1, 1), atol=1e-5
        )
        assert attrs["mode"] == "hybrid" and attrs["alpha"] == pytest.approx(ALPHA)
        # version 0 = no residual consulted (base phase); 3 = the loaded weights
        assert set(attrs["residual_versions"]) <= {0, 3} and (
            3 in attrs["residual_versions"]
        ) == bool(res.any())
    # T_base ~ U{0..floor(alpha * T_max)}: Kolmogorov-Smirnov against the discrete uniform
    support = int(ALPHA * T_MAX)
    pvalue = stats.kstest(t_bases, stats.randint(0, support + 1).cdf).pvalue
    assert pvalue > 0.001 and max(t_bases) <= support
    assert len(set(t_bases)) > 10
