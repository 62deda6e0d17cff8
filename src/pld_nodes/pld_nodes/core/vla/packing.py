"""Backend-independent glue between :class:`PolicyObservation` and the VLA's input arrays.

The torch and the ONNX policy share it, so both see identical inputs (same tokens, same noise
for the same seed) and return identical chunks up to float error. Deliberately torch-free.
"""

from __future__ import annotations

import numpy as np

from pld_nodes.core.policy.interface import PolicyObservation, PolicySpec
from pld_nodes.core.vla.config import VLAConfig
from pld_nodes.core.vla.text import HashTokenizer

PROPRIO, TOKENS, OBJECT_STATE, NOISE = "proprio", "tokens", "object_state", "noise"
IMAGE_PREFIX = "image_"
OUTPUT = "actions"


def policy_spec(config: VLAConfig, version: int = 0) -> PolicySpec:
    """The :class:`PolicySpec` a policy built from ``config`` advertises."""
    return PolicySpec(
        name=config.name,
        action_dim=config.action_dim,
        chunk_horizon=config.horizon,
        step_period_s=config.step_period_s,
        image_keys=config.image_keys,
        image_size=config.image_size,
        proprio_dim=config.proprio_dim,
        uses_object_state=config.use_object_state,
        object_state_dim=config.object_state_dim,
        version=version,
    )


def input_names(config: VLAConfig) -> list[str]:
    """Ordered input names of the exported graph (noise only for the flow head)."""
    names = [PROPRIO, TOKENS]
    if config.use_object_state:
        names.append(OBJECT_STATE)
    names += [IMAGE_PREFIX + k for k in config.image_keys]
    if config.head == "flow":
        names.append(NOISE)
    return names


class ObservationPacker:
    """Validates an observation and packs it into batch-1 numpy arrays keyed by input name."""

    def __init__(self, config: VLAConfig, noise_seed: int | None = 0) -> None:
        self.config = config
        self.spec = policy_spec(config)
        self.tokenizer = HashTokenizer(config.text)
        self.noise_seed = noise_seed
        self.rng = np.random.default_rng(noise_seed)

    def reset(self, seed: int | None = None) -> None:
        """Restart the noise stream (from ``seed``, or the constructor's seed)."""
        self.rng = np.random.default_rng(self.noise_seed if seed is None else seed)

    def pack(self, obs: PolicyObservation) -> dict[str, np.ndarray]:
        """Arrays with a leading batch dim of 1; draws fresh flow noise from the seeded stream."""
        obs.validate(self.spec)
        c = self.config
        arrays = {
            PROPRIO: np.asarray(obs.proprio, np.float32)[None],
            TOKENS: self.tokenizer.encode(obs.instruction)[None],
        }
        if c.use_object_state:
            arrays[OBJECT_STATE] = np.asarray(obs.object_state, np.float32)[None]
        for key in c.image_keys:
            arrays[IMAGE_PREFIX + key] = np.ascontiguousarray(obs.images[key])[None]
        if c.head == "flow":
            shape = (1, c.horizon, c.action_dim)
            arrays[NOISE] = self.rng.standard_normal(shape, dtype=np.float32)
        return arrays
