"""Synthetic residual-RL episodes in the episode-store step format."""

import numpy as np
import pytest

from pld_nodes.core.residual.replay import PHASE_BASE, PHASE_RESIDUAL


def make_episode(length: int, *, success: bool, takeover: int = 0, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    reward = np.zeros(length, np.float32)
    if success:
        reward[-1] = 1.0
    phase = np.full(length, PHASE_BASE, np.int8)
    phase[takeover:] = PHASE_RESIDUAL
    base = rng.uniform(-1, 1, (length, 7)).astype(np.float32)
    residual = np.where(phase[:, None] == PHASE_RESIDUAL, rng.uniform(-1, 1, (length, 7)), 0.0)
    return {
        "proprio": rng.normal(size=(length, 16)).astype(np.float32),
        "object_state": rng.normal(size=(length, 7)).astype(np.float32),
        "base_action": base,
        "residual_action": residual.astype(np.float32),
        "action": np.clip(base + 0.5 * residual, -1, 1).astype(np.float32),
        "phase": phase,
        "reward": reward,
    }


@pytest.fixture
def episode_factory():
    return make_episode
