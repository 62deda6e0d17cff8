"""Supervised samples for the built-in VLA from plain-numpy episodes.

An episode is a dict: ``proprio (T, 16) float32``, ``actions (T, 7) float32`` in [-1, 1],
``instruction str``, optionally ``images {cam: (T, H, W, 3) uint8}`` and ``object_state
(T, K)``. Sample ``(e, t)`` is the observation at t and the chunk ``a[t : t + H]``; past the
episode end the last action is repeated and ``mask`` is 0, so the loss can ignore the padding.
Batches are drawn from ``(seed, step)`` alone, which makes training resumable bit-exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pld_nodes.core.vla.config import NormStats
from pld_nodes.core.vla.text import HashTokenizer

_LOG = logging.getLogger(__name__)
STD_FLOOR = 1e-3
"""Dimensions that barely vary in the data (e.g. a fixed quaternion) are not blown up."""


def _check_episode(i: int, ep: Mapping[str, Any]) -> int:
    for key in ("proprio", "actions", "instruction"):
        if key not in ep:
            raise ValueError(f"episode {i} has no {key!r}")
    proprio, actions = np.asarray(ep["proprio"]), np.asarray(ep["actions"])
    t = len(actions)
    if t < 1 or proprio.ndim != 2 or len(proprio) != t or actions.ndim != 2:
        raise ValueError(f"episode {i}: proprio {proprio.shape} / actions {actions.shape} mismatch")
    if not np.all(np.isfinite(actions)) or np.abs(actions).max() > 1.0 + 1e-6:
        raise ValueError(f"episode {i}: actions must be finite and in [-1, 1]")
    for cam, frames in (ep.get("images") or {}).items():
        if frames.dtype != np.uint8 or frames.ndim != 4 or len(frames) != t:
            raise ValueError(f"episode {i}: images[{cam!r}] is {frames.dtype} {frames.shape}")
    if ep.get("object_state") is not None and len(ep["object_state"]) != t:
        raise ValueError(f"episode {i}: object_state length {len(ep['object_state'])} != {t}")
    return t


def _sample_probs(episode_weights: Sequence[float], lengths: Sequence[int]) -> np.ndarray:
    """Per-sample probabilities: episode e's total mass is proportional to its weight, spread
    evenly over its timesteps."""
    w = np.asarray(episode_weights, np.float64)
    if w.shape != (len(lengths),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(
            f"episode_weights must be {len(lengths)} finite non-negative numbers with a positive "
            f"sum, got {episode_weights!r}"
        )
    per_sample = np.concatenate([np.full(n, wi / n) for wi, n in zip(w, lengths, strict=True)])
    return per_sample / per_sample.sum()


class EpisodeDataset:
    """Indexable (episode, t) samples with action chunks of length ``horizon``.

    ``episode_weights`` (one per episode) turns batch sampling into a weighted mixture: episode
    e's share of the samples drawn is ``w_e / sum(w)`` whatever its length. Distillation uses it
    to mix PLD episodes with the original demos at a chosen ratio.
    """

    def __init__(
        self,
        episodes: Sequence[Mapping[str, Any]],
        horizon: int,
        *,
        seed: int = 0,
        image_keys: tuple[str, ...] = (),
        use_object_state: bool = False,
        tokenizer: HashTokenizer | None = None,
        episode_weights: Sequence[float] | None = None,
    ) -> None:
        if not episodes:
            raise ValueError("EpisodeDataset needs at least one episode")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon!r}")
        lengths = [_check_episode(i, ep) for i, ep in enumerate(episodes)]
        for i, ep in enumerate(episodes):
            missing = [k for k in image_keys if k not in (ep.get("images") or {})]
            if missing:
                raise ValueError(f"episode {i} lacks images {missing}")
            if use_object_state and ep.get("object_state") is None:
                raise ValueError(f"episode {i} has no object_state")
        self.episodes = list(episodes)
        self.horizon, self.seed = horizon, seed
        self.image_keys, self.use_object_state = tuple(image_keys), use_object_state
        self.tokenizer = tokenizer or HashTokenizer()
        self._proprio = [np.asarray(ep["proprio"], np.float32) for ep in episodes]
        self._actions = [np.asarray(ep["actions"], np.float32) for ep in episodes]
        self._objects = [
            np.asarray(ep["object_state"], np.float32) if use_object_state else None
            for ep in episodes
        ]
        self._index = np.array([(e, t) for e, n in enumerate(lengths) for t in range(n)], np.int64)
        self._probs = None if episode_weights is None else _sample_probs(episode_weights, lengths)
        _LOG.debug("dataset: %d episodes, %d samples", len(episodes), len(self._index))

    def __len__(self) -> int:
        return len(self._index)

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i: int) -> dict[str, Any]:
        """One sample as numpy: proprio, actions (H, A), mask (H,), instruction, ..."""
        e, t = (int(v) for v in self._index[i])
        acts = self._actions[e]
        steps = np.arange(t, t + self.horizon)
        sample: dict[str, Any] = {
            "proprio": self._proprio[e][t],
            "actions": acts[np.minimum(steps, len(acts) - 1)],
            "mask": (steps < len(acts)).astype(np.float32),
            "instruction": str(self.episodes[e]["instruction"]),
        }
        if self.use_object_state:
            sample["object_state"] = self._objects[e][t]  # type: ignore[index]
        for cam in self.image_keys:
            sample[f"image/{cam}"] = np.asarray(self.episodes[e]["images"][cam][t])
        return sample

    def collate(
        self, indices: Sequence[int], tokenizer: HashTokenizer | None = None
    ) -> dict[str, torch.Tensor]:
        """Stack samples into tensors; the instruction becomes hashed ``tokens``.

        Pass the model's tokenizer when its ``TokenizerConfig`` differs from the dataset's.
        """
        samples = [self[int(i)] for i in indices]
        batch = {
            k: torch.from_numpy(np.stack([s[k] for s in samples]))
            for k in samples[0]
            if k != "instruction"
        }
        batch["tokens"] = torch.from_numpy(
            (tokenizer or self.tokenizer).encode_batch([s["instruction"] for s in samples])
        )
        return batch

    def batch_indices(self, step: int, batch_size: int) -> np.ndarray:
        """Sample indices for training step ``step``: a pure function of (seed, step)."""
        rng = np.random.default_rng([self.seed, step])
        if self._probs is not None:  # weighted mixture: always with replacement
            return rng.choice(len(self), size=batch_size, p=self._probs)
        return rng.choice(len(self), size=batch_size, replace=len(self) < batch_size)

    def norm_stats(self) -> NormStats:
        """Mean/std over all timesteps (std floored at ``STD_FLOOR``)."""
        proprio = np.concatenate(self._proprio).astype(np.float64)
        obj = np.concatenate(self._objects).astype(np.float64) if self.use_object_state else None
        return NormStats(
            proprio.mean(0).astype(np.float32),
            np.maximum(proprio.std(0), STD_FLOOR).astype(np.float32),
            None if obj is None else obj.mean(0).astype(np.float32),
            None if obj is None else np.maximum(obj.std(0), STD_FLOOR).astype(np.float32),
        )

    def describe(self) -> dict[str, Any]:
        """Small JSON-safe summary stored in checkpoint metadata."""
        return {
            "episodes": self.num_episodes,
            "samples": len(self),
            "instructions": sorted({str(ep["instruction"]) for ep in self.episodes})[:8],
            "horizon": self.horizon,
            "seed": self.seed,
            "weighted": self._probs is not None,
        }
