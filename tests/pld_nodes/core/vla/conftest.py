"""Tiny VLA configs and a synthetic task whose target chunk is a known function of proprio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pld_nodes.core.vla.config import VLAConfig
from pld_nodes.core.vla.text import TokenizerConfig

HORIZON = 4
EPISODE_LEN = 12
INSTRUCTION = "lift the red cube"


def tiny_config(head: str = "flow", **overrides: Any) -> VLAConfig:
    """A model small enough to train in about a second on one CPU core."""
    values: dict[str, Any] = {
        "name": f"tiny-{head}",
        "head": head,
        "horizon": HORIZON,
        "hidden_dim": 64,
        "context_layers": 1,
        "text": TokenizerConfig(num_buckets=256, max_tokens=16),
        "text_dim": 16,
        "flow_hidden": 128,
        "flow_layers": 2,
        "flow_steps": 10,
        "ar_hidden": 64,
        "ar_bins": 256,
        "cnn_channels": (8, 16),
        "image_size": (32, 32),
    }
    values.update(overrides)
    return VLAConfig(**values)


def synthetic_episodes(
    n: int = 6, seed: int = 0, *, object_dim: int = 0, image_keys: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Episodes where proprio = [episode code (8), t / T, 0...] and a_t = f(code, t).

    The chunk a[t : t + H] is then a deterministic function of the proprio at t, so a model
    can drive its SFT loss close to zero.
    """
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(7, 8)) / np.sqrt(8)
    episodes = []
    for _ in range(n):
        code = rng.uniform(-1, 1, 8)
        ts = np.arange(EPISODE_LEN)
        proprio = np.zeros((EPISODE_LEN, 16), np.float32)
        proprio[:, :8] = code
        proprio[:, 8] = ts / EPISODE_LEN
        base = np.tanh(mix @ code)
        actions = 0.8 * base[None, :] * np.cos(ts[:, None] * 0.4)
        ep: dict[str, Any] = {
            "proprio": proprio,
            "actions": actions.astype(np.float32),
            "instruction": INSTRUCTION,
        }
        if object_dim:
            ep["object_state"] = rng.normal(size=(EPISODE_LEN, object_dim)).astype(np.float32)
        if image_keys:
            ep["images"] = {
                k: rng.integers(0, 256, (EPISODE_LEN, 32, 32, 3), dtype=np.uint8)
                for k in image_keys
            }
        episodes.append(ep)
    return episodes


@pytest.fixture
def make_config() -> Callable[..., VLAConfig]:
    return tiny_config


@pytest.fixture
def make_episodes() -> Callable[..., list[dict[str, Any]]]:
    return synthetic_episodes


@pytest.fixture
def episodes() -> list[dict[str, Any]]:
    return synthetic_episodes()


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread():
    """Small models run fastest on one thread; more threads thrash on a shared 2-core CI box."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
