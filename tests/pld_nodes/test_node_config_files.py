"""The shipped node parameter files build the dataclasses their nodes declare."""

from pathlib import Path

import yaml

from pld_nodes.core.config import from_mapping
from pld_nodes.core.residual.config import ResidualPolicyConfig, SACConfig
from pld_nodes.core.residual.service import LearnerServiceConfig
from pld_nodes.residual_node import ResidualNodeConfig

NODES = Path(__file__).resolve().parents[2] / "launch" / "config" / "nodes"


def params(name: str) -> dict:
    return yaml.safe_load((NODES / name).read_text())["/**"]["ros__parameters"]


def test_residual_config_file() -> None:
    cfg = from_mapping(ResidualNodeConfig, params("residual.yaml"))
    assert cfg.stochastic and cfg.use_object_state


def test_learner_config_file() -> None:
    values = params("learner_lift.yaml")
    policy = from_mapping(ResidualPolicyConfig, values.pop("policy"))
    sac = from_mapping(SACConfig, values.pop("sac"))
    service = from_mapping(LearnerServiceConfig, values)
    assert policy.xi == 0.5 and sac.batch_size == 256 and service.publish_every_updates == 50


def test_arbiter_manager_recorder_config_files() -> None:
    from pld_nodes.arbiter_node import ArbiterNodeConfig
    from pld_nodes.core.arbiter import ArbiterConfig
    from pld_nodes.episode_manager_node import EpisodeManagerConfig
    from pld_nodes.recorder_node import RecorderConfig

    values = params("arbiter.yaml")
    arbiter = from_mapping(ArbiterConfig, values.pop("arbiter"))
    from_mapping(ArbiterNodeConfig, values)
    assert arbiter.alpha == 0.6
    assert from_mapping(EpisodeManagerConfig, params("episode_manager_sim.yaml")).auto_label
    rec = params("recorder_sim.yaml")
    rec["camera_names"] = tuple(rec["camera_names"])
    assert from_mapping(RecorderConfig, rec).privileged_state


def test_camera_config_files() -> None:
    from pld_nodes.camera_node import CameraNodeConfig

    for name, expected in (("camera_wrist.yaml", "wrist"), ("camera_front.yaml", "front")):
        values = params(name)
        values["policy_crop"] = tuple(values["policy_crop"])
        cfg = from_mapping(CameraNodeConfig, values)
        assert cfg.name == expected and cfg.kind == "realsense"
        stream = cfg.policy_stream()
        assert stream is not None
        stream.check_fits(cfg.width, cfg.height)
