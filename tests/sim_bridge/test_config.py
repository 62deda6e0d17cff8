"""EnvConfig validation, the task registry and the action convention (no simulator needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_bridge.envs import (
    ACTION_SCALE_SI,
    MAX_DELTA_POS_M,
    MAX_DELTA_ROT_RAD,
    PROPRIO_DIM,
    PROPRIO_LAYOUT,
    TASK_REGISTRY,
    EnvConfig,
    get_task_spec,
    list_tasks,
    make_env,
    normalised_to_si,
    si_to_normalised,
    validate_action,
)
from sim_bridge.envs.conventions import osc_pose_controller_config


def test_defaults_are_the_documented_ones() -> None:
    cfg = EnvConfig()
    assert cfg.task == "lift"
    assert cfg.control_freq == 20.0
    assert cfg.image_size == (128, 128)
    assert cfg.image_cameras == ("agentview", "robot0_eye_in_hand")
    assert EnvConfig(render=False).image_cameras == ()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("task", ""),
        ("camera_names", "agentview"),
        ("camera_names", ("a", "a")),
        ("image_size", (0, 128)),
        ("image_size", (128,)),
        ("control_freq", 0),
        ("control_freq", math.nan),
        ("control_freq", 1000.0),
        ("max_steps", 0),
        ("seed", -1),
        ("settle_steps", -2),
        ("render", "yes"),
    ],
)
def test_invalid_config_raises_with_value(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field) as excinfo:
        EnvConfig(**{field: value})  # type: ignore[arg-type]
    assert repr(value) in str(excinfo.value)


def test_config_is_frozen() -> None:
    cfg = EnvConfig()
    with pytest.raises(AttributeError):
        cfg.task = "libero_object/0"  # type: ignore[misc]


def test_registry_lists_lift_and_all_130_libero_tasks() -> None:
    names = list_tasks()
    assert names[0] == "lift"
    assert len(names) == 1 + 130
    assert "libero_object/3" in TASK_REGISTRY
    assert get_task_spec("libero_90/89").suite == "libero_90"
    assert get_task_spec("libero_10/9").default_max_steps == 520


@pytest.mark.parametrize("task", ["libero_object/10", "pick", "libero_spatial"])
def test_unknown_task_raises(task: str) -> None:
    with pytest.raises(ValueError, match="unknown task"):
        make_env(task, render=False)


def test_validate_action_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        validate_action(np.zeros(6))
    with pytest.raises(ValueError, match="shape"):
        validate_action(np.zeros((1, 7)))
    with pytest.raises(ValueError, match="finite"):
        validate_action([0, 0, math.nan, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="finite"):
        validate_action([0, 0, 0, 0, 0, math.inf, 0])
    with pytest.raises(ValueError, match="numeric"):
        validate_action(["a"] * 7)


def test_validate_action_clips() -> None:
    out = validate_action([2.0, -3.0, 0.5, 0, 0, 0, 1.5])
    np.testing.assert_array_equal(out, [1.0, -1.0, 0.5, 0, 0, 0, 1.0])


def test_si_scaling_matches_controller_config() -> None:
    cfg = osc_pose_controller_config()
    assert cfg["type"] == "OSC_POSE"
    np.testing.assert_array_equal(cfg["output_max"], ACTION_SCALE_SI[:6])
    assert (MAX_DELTA_POS_M, MAX_DELTA_ROT_RAD) == (0.05, 0.5)
    si = normalised_to_si(np.array([1, -0.5, 0, 0.2, 0, -1, 1]))
    np.testing.assert_allclose(si, [0.05, -0.025, 0, 0.1, 0, -0.5, 1])
    np.testing.assert_allclose(si_to_normalised(si), [1, -0.5, 0, 0.2, 0, -1, 1])


def test_proprio_layout_is_contiguous() -> None:
    covered = sorted(i for s in PROPRIO_LAYOUT.values() for i in range(s.start, s.stop))
    assert covered == list(range(PROPRIO_DIM))
