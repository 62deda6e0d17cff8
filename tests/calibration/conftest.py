"""Synthetic sessions rendered once per test session (MuJoCo, headless EGL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from pld_calibration.session import Session
from pld_calibration.synthetic import SynthConfig, render_session

VIEWS = 20


@pytest.fixture(scope="session")
def eye_in_hand_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    out = tmp_path_factory.mktemp("synth") / "eye_in_hand"
    return render_session(SynthConfig(mode="eye_in_hand", views=VIEWS, seed=1), out)


@pytest.fixture(scope="session")
def eye_to_hand_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    out = tmp_path_factory.mktemp("synth") / "eye_to_hand"
    return render_session(SynthConfig(mode="eye_to_hand", views=VIEWS, seed=2), out)


@pytest.fixture
def small_session(tmp_path: Path) -> Path:
    """A fresh 8-view session a test may damage."""
    out = tmp_path / "small"
    render_session(SynthConfig(mode="eye_in_hand", views=8, seed=3), out)
    return out
