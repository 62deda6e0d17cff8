"""Zarr v3 episode store: the one on-disk format for demos, rollouts, RL replay and distillation.

Layout (like Diffusion Policy's ReplayBuffer, plus per-episode attributes)::

    <root>/                      zarr group; attrs: schema_version, created, software_version
      data/<key>                 time-concatenated arrays, first axis = step (e.g. data/proprio,
      data/images/<camera>       data/action, data/images/agentview); every key has the same
      ...                        number of rows
      meta/episode_ends          int64 (n_episodes,): exclusive end row of each episode
      meta  (group attrs)        {"episodes": [ {per-episode attributes}, ... ]}

Commit protocol: an episode's rows are written first, then ``meta/episode_ends``, then the
``meta`` attributes. The length of ``meta.attrs["episodes"]`` is the commit marker: rows and
ends beyond it belong to an episode whose write was interrupted and are ignored when reading and
truncated when the store is reopened for appending. Zarr writes each key atomically (local
files through a temporary file + rename), so a crash or kill at any point leaves every
previously committed episode intact and readable. Callers never touch zarr paths.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

SCHEMA_VERSION = 1
IMAGE_CHUNK_STEPS = 8
LOWDIM_CHUNK_STEPS = 256


class EpisodeStoreError(RuntimeError):
    """The store on disk does not satisfy its invariants, or a write would break them."""


class EpisodeStore:
    """Append-only episode storage. Build with :meth:`create` or :meth:`open`."""

    def __init__(self, root: zarr.Group, path: str, writable: bool) -> None:
        self._root = root
        self._path = path
        self._writable = writable
        self._data = root["data"]
        self._meta = root["meta"]
        self._episodes: list[dict[str, Any]] = list(self._meta.attrs.get("episodes", []))
        ends = np.asarray(self._meta["episode_ends"][:], dtype=np.int64)
        self._ends = ends[: len(self._episodes)]
        self._check_ends()

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | Path, *, overwrite: bool = False, software_version: str = ""
    ) -> EpisodeStore:
        path = str(path)
        if not overwrite and Path(path).exists() and any(Path(path).iterdir()):
            raise EpisodeStoreError(
                f"{path} exists and is not empty; use EpisodeStore.open(path, mode='a') to "
                "append, or create(..., overwrite=True) to replace it"
            )
        root = zarr.open_group(path, mode="w" if overwrite else "w-")
        root.attrs.update(
            {
                "schema_version": SCHEMA_VERSION,
                "created": time.time(),
                "software_version": software_version,
                "kind": "pld_episode_store",
            }
        )
        root.create_group("data")
        meta = root.create_group("meta")
        meta.create_array("episode_ends", shape=(0,), chunks=(4096,), dtype="int64")
        meta.attrs["episodes"] = []
        return cls(root, path, writable=True)

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> EpisodeStore:
        """Open for reading (``r``) or appending (``a``, repairs an interrupted last write)."""
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        path = str(path)
        if not Path(path).exists():
            raise EpisodeStoreError(
                f"no episode store at {path}; create it with EpisodeStore.create(path)"
            )
        try:
            root = zarr.open_group(path, mode="r" if mode == "r" else "r+")
        except (FileNotFoundError, ValueError) as exc:
            raise EpisodeStoreError(f"{path} is not a zarr group: {exc}") from exc
        version = root.attrs.get("schema_version")
        if root.attrs.get("kind") != "pld_episode_store" or version is None:
            raise EpisodeStoreError(f"{path} is not a PLD episode store")
        if version > SCHEMA_VERSION:
            raise EpisodeStoreError(
                f"{path} has schema {version}; this software reads "
                f"<= {SCHEMA_VERSION}: upgrade pld_nodes"
            )
        store = cls(root, path, writable=mode == "a")
        if mode == "a":
            store._truncate_uncommitted()
        return store

    # -- reading ---------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._path

    @property
    def n_episodes(self) -> int:
        return len(self._episodes)

    @property
    def n_steps(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def keys(self) -> list[str]:
        return sorted(_array_keys(self._data))

    def episode_slice(self, index: int) -> slice:
        index = self._check_index(index)
        start = int(self._ends[index - 1]) if index > 0 else 0
        return slice(start, int(self._ends[index]))

    def episode_length(self, index: int) -> int:
        s = self.episode_slice(index)
        return s.stop - s.start

    def episode_attrs(self, index: int) -> dict[str, Any]:
        return dict(self._episodes[self._check_index(index)])

    def get_episode(self, index: int, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        s = self.episode_slice(index)
        wanted = self.keys if keys is None else list(keys)
        unknown = sorted(set(wanted) - set(self.keys))
        if unknown:
            raise KeyError(f"unknown keys {unknown}; the store has {self.keys}")
        return {k: np.asarray(self._data[k][s]) for k in wanted}

    def episodes(self, **where: Any) -> list[int]:
        """Indices of committed episodes whose attributes equal every ``where`` item."""
        return [
            i
            for i, attrs in enumerate(self._episodes)
            if all(attrs.get(k) == v for k, v in where.items())
        ]

    def array(self, key: str) -> zarr.Array:
        """Read-only handle on a whole data column (committed rows: ``[:n_steps]``)."""
        if key not in self.keys:
            raise KeyError(f"unknown key {key!r}; the store has {self.keys}")
        return self._data[key]

    # -- writing ---------------------------------------------------------------------------
    def add_episode(self, data: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> int:
        """Append one complete episode atomically; return its index."""
        if not self._writable:
            raise EpisodeStoreError(
                f"{self._path} was opened read-only; use "
                "EpisodeStore.open(path, mode='a') to append"
            )
        arrays = {k: np.asarray(v) for k, v in data.items()}
        length = self._validate_episode(arrays)
        record = _json_safe(dict(attrs)) | {"length": length}
        start = self.n_steps
        for key, value in arrays.items():
            arr = self._column(key, value)
            arr.resize((start + length, *arr.shape[1:]))
            arr[start : start + length] = value
        ends_arr = self._meta["episode_ends"]
        new_ends = np.append(self._ends, start + length)
        ends_arr.resize((len(new_ends),))
        ends_arr[len(new_ends) - 1] = start + length
        episodes = [*self._episodes, record]
        self._meta.attrs["episodes"] = episodes  # commit point
        self._episodes, self._ends = episodes, new_ends
        return len(episodes) - 1

    def _validate_episode(self, arrays: dict[str, np.ndarray]) -> int:
        if not arrays:
            raise EpisodeStoreError("an episode needs at least one data key")
        lengths = {k: (v.shape[0] if v.ndim else -1) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1 or min(lengths.values()) < 1:
            raise EpisodeStoreError(f"every key needs the same number (>= 1) of steps: {lengths}")
        existing = set(self.keys)
        if existing and set(arrays) != existing:
            raise EpisodeStoreError(
                f"episode keys differ from the store's: missing {sorted(existing - set(arrays))},"
                f" extra {sorted(set(arrays) - existing)}"
            )
        for key, value in arrays.items():
            if key in existing:
                col = self._data[key]
                if col.shape[1:] != value.shape[1:] or col.dtype != value.dtype:
                    raise EpisodeStoreError(
                        f"key {key!r}: episode has {value.dtype} {value.shape[1:]} per step, "
                        f"the store has {col.dtype} {col.shape[1:]}"
                    )
        return next(iter(lengths.values()))

    def _column(self, key: str, value: np.ndarray) -> zarr.Array:
        if key in _array_keys(self._data):
            return self._data[key]
        is_image = value.dtype == np.uint8 and value.ndim == 4
        steps = IMAGE_CHUNK_STEPS if is_image else LOWDIM_CHUNK_STEPS
        compressor = ZstdCodec(level=3) if is_image else BloscCodec(cname="zstd", clevel=3)
        return self._data.create_array(
            key,
            shape=(0, *value.shape[1:]),
            chunks=(steps, *value.shape[1:]),
            dtype=value.dtype,
            compressors=[compressor],
        )

    def _truncate_uncommitted(self) -> None:
        n = self.n_steps
        ends_arr = self._meta["episode_ends"]
        if ends_arr.shape[0] != len(self._ends):
            ends_arr.resize((len(self._ends),))
        for key in _array_keys(self._data):
            arr = self._data[key]
            if arr.shape[0] != n:
                arr.resize((n, *arr.shape[1:]))

    def _check_ends(self) -> None:
        if len(self._ends) != len(self._episodes):
            raise EpisodeStoreError(
                f"{self._path}: {len(self._episodes)} committed episodes but only "
                f"{len(self._ends)} episode ends: the store is corrupt"
            )
        if len(self._ends) and (np.any(np.diff(self._ends) <= 0) or self._ends[0] <= 0):
            raise EpisodeStoreError(f"{self._path}: episode_ends not strictly increasing")
        for key in _array_keys(self._data):
            if self._data[key].shape[0] < self.n_steps:
                raise EpisodeStoreError(
                    f"{self._path}: data/{key} has {self._data[key].shape[0]} rows, committed "
                    f"episodes need {self.n_steps}"
                )

    def _check_index(self, index: int) -> int:
        n = self.n_episodes
        if not -n <= index < n:
            raise IndexError(f"episode {index} out of range: the store has {n} episodes")
        return index % n


def _array_keys(group: zarr.Group, prefix: str = "") -> list[str]:
    keys = []
    for name, member in group.members():
        if isinstance(member, zarr.Group):
            keys += _array_keys(member, f"{prefix}{name}/")
        else:
            keys.append(prefix + name)
    return keys


def _json_safe(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes must survive JSON: numpy scalars become Python ones; NaN/inf are refused."""

    def convert(v: Any) -> Any:
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            raise EpisodeStoreError(f"episode attribute value {v!r} is not finite")
        if isinstance(v, dict):
            return {str(k): convert(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [convert(x) for x in v]
        return v

    out = convert(attrs)
    json.dumps(out)  # raises TypeError naming the bad type
    return out
