"""Moving episodes between the episode store and the in-memory episode dicts of training code.

Training code (``pld_nodes.core.vla``) takes episodes as dicts: ``proprio (T,16)``,
``actions (T,7)``, ``instruction``, optional ``object_state (T,K)`` and ``images {cam: (T,H,W,3)}``.
The store keeps the executed action under ``action`` and images under ``images/<camera>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from pld_nodes.core.episode_store import EpisodeStore

_ATTR_SKIP = {"proprio", "actions", "object_state", "images"}


def add_demo_episodes(
    store: EpisodeStore, episodes: Iterable[Mapping[str, Any]], **common_attrs: Any
) -> list[int]:
    """Append training-format episodes; scalar extras (task, seed, ...) become attributes."""
    indices = []
    for ep in episodes:
        data: dict[str, np.ndarray] = {
            "proprio": np.asarray(ep["proprio"], np.float32),
            "action": np.asarray(ep["actions"], np.float32),
        }
        if ep.get("object_state") is not None:
            data["object_state"] = np.asarray(ep["object_state"], np.float32)
        for cam, frames in (ep.get("images") or {}).items():
            data[f"images/{cam}"] = np.asarray(frames, np.uint8)
        extras = {k: v for k, v in ep.items() if k not in _ATTR_SKIP and np.isscalar(v)}
        attrs = {"success": True} | extras | common_attrs
        indices.append(store.add_episode(data, attrs))
    return indices


def load_training_episodes(
    store: EpisodeStore, indices: Iterable[int] | None = None, image_keys: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Episodes (default: all successful ones) in the training format."""
    chosen = list(store.episodes(success=True) if indices is None else indices)
    image_keys = list(image_keys)
    missing = [k for k in image_keys if f"images/{k}" not in store.keys]
    if missing:
        raise KeyError(f"store {store.path} has no images for cameras {missing}")
    keys = ["proprio", "action"] + [f"images/{k}" for k in image_keys]
    if "object_state" in store.keys:
        keys.append("object_state")
    out = []
    for i in chosen:
        raw = store.get_episode(i, keys)
        attrs = store.episode_attrs(i)
        ep: dict[str, Any] = {
            "proprio": raw["proprio"],
            "actions": raw["action"],
            "instruction": str(attrs.get("instruction", "")),
        }
        if "object_state" in raw:
            ep["object_state"] = raw["object_state"]
        if image_keys:
            ep["images"] = {k: raw[f"images/{k}"] for k in image_keys}
        out.append(ep)
    return out


DISTILL_MODES = ("hybrid",)


def distillation_indices(
    store: EpisodeStore, modes: Iterable[str] = DISTILL_MODES, include_discarded: bool = False
) -> list[int]:
    """PLD's distillation set: whole *successful* episodes of the given modes (default: hybrid
    rollouts), base-only prefix included; their stored ``action`` is the executed action, which
    is what the VLA is fine-tuned to produce. Eval runs are never training data."""
    wanted = set(modes)
    out = []
    for i in store.episodes(success=True):
        attrs = store.episode_attrs(i)
        if attrs.get("mode") not in wanted or attrs.get("stage") == "eval":
            continue
        if attrs.get("discarded") and not include_discarded:
            continue
        out.append(i)
    return out


def load_distillation_episodes(
    store: EpisodeStore, modes: Iterable[str] = DISTILL_MODES, image_keys: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """:func:`distillation_indices` in the training format (see :func:`load_training_episodes`)."""
    return load_training_episodes(store, distillation_indices(store, modes), image_keys)
