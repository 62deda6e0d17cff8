"""Sim test setup: headless MuJoCo rendering and shared, module-scoped environments."""

from __future__ import annotations

import os

# Must precede any mujoco import: EGL (Mesa llvmpipe on CPU) is the headless GL backend here.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sim_bridge.envs import PandaTaskEnv, make_env


@pytest.fixture(scope="module")
def lift_env() -> Iterator[PandaTaskEnv]:
    """Physics-only Lift (no GL context), shared by a module's tests to save build time."""
    env = make_env("lift", render=False, seed=0)
    yield env
    env.close()


def _run_episode(env: PandaTaskEnv, expert: Any, seed: int, **reset_options: int) -> bool:
    obs, info = env.reset(seed=seed, options=reset_options or None)
    expert.reset(obs, info)
    while True:
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        if terminated or truncated:
            return bool(info["success"])


@pytest.fixture
def run_episode() -> Callable[..., bool]:
    """Roll out an expert for one episode and report the env's own success flag."""
    return _run_episode
