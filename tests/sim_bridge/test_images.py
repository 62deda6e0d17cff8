"""Rendered images are upright: row 0 is the top of the picture."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sim_bridge.envs import PandaTaskEnv, make_env

CAMERAS = ("frontview", "agentview")


@pytest.fixture(scope="module", params=[True, False], ids=["fast", "full"])
def render_env(request: pytest.FixtureRequest) -> Iterator[PandaTaskEnv]:
    env = make_env(
        "lift",
        camera_names=CAMERAS,
        image_size=(128, 128),
        fast_render=request.param,
        render_camera="frontview",
        render_size=(128, 128),
        seed=0,
    )
    yield env
    env.close()


def _red_rows(image: np.ndarray) -> np.ndarray:
    """Row indices of saturated red pixels (the Lift cube)."""
    rgb = image.astype(np.int32)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mask = (red > 70) & (red > 2 * green) & (red > 2 * blue)
    return np.nonzero(mask)[0]


def _place_cube(env: PandaTaskEnv, z: float) -> None:
    sim = env.sim
    joint = env.robosuite_env.cube.joints[0]
    qpos = np.array(sim.data.get_joint_qpos(joint))
    qpos[:3] = [0.0, 0.0, z]
    sim.data.set_joint_qpos(joint, qpos)
    sim.forward()


def test_higher_object_appears_nearer_the_top(render_env: PandaTaskEnv) -> None:
    """Raising the cube 17 cm must move its pixels up (smaller row) in every upright camera."""
    render_env.reset(seed=0)
    rows: dict[float, dict[str, float]] = {}
    for z in (0.83, 1.0):
        _place_cube(render_env, z)
        images = render_env._observation()["images"]
        rows[z] = {}
        for cam in CAMERAS:
            red = _red_rows(images[cam])
            assert red.size > 10, f"cube not visible in {cam} at z={z}"
            rows[z][cam] = float(red.mean())
    for cam in CAMERAS:
        assert rows[1.0][cam] < rows[0.83][cam] - 8, (cam, rows)


def test_table_fills_the_lower_half_of_the_front_view(render_env: PandaTaskEnv) -> None:
    """The white table top is below the horizon of the front camera, i.e. in the bottom half."""
    obs, _ = render_env.reset(seed=0)
    gray = obs["images"]["frontview"].astype(np.float32).mean(axis=2)
    white = gray > 200
    top, bottom = white[:64].mean(), white[64:].mean()
    assert bottom > 0.25 and bottom > 2 * top, (top, bottom)


def test_render_matches_observation_image(render_env: PandaTaskEnv) -> None:
    obs, _ = render_env.reset(seed=1)
    np.testing.assert_array_equal(render_env.render(), obs["images"]["frontview"])
