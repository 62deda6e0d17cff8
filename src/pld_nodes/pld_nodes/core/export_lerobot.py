"""Export an episode store to LeRobotDataset v3.0 (what LeRobot and openpi fine-tune from).

Layout written (no videos: camera frames are PNG images inside the parquet, dtype ``image``)::

    meta/info.json                               codebase_version "v3.0", fps, features, totals
    meta/tasks.parquet                           index = task string, column task_index
    meta/episodes/chunk-XXX/file-YYY.parquet     one row per episode: tasks, length, where its
                                                 frames live, dataset_from/to_index
    meta/stats.json                              min/max/mean/std/count/q01..q99 per feature
    data/chunk-XXX/file-YYY.parquet              one row per frame, episodes in order

Features: ``observation.state`` (the 16-D proprio), ``observation.environment_state`` (the
sim's privileged object state, when recorded), ``observation.images.<camera>``, ``action`` (the
executed action, 7-D normalised delta EE + gripper), ``next.reward``, ``next.done``, plus
LeRobot's ``timestamp``, ``frame_index``, ``episode_index``, ``index``, ``task_index``.
Data files roll over at ``data_files_size_in_mb``; ``chunks_size`` files per chunk directory.
Loading with ``lerobot==0.4.4`` is tested (``tests/pld_nodes/core/test_export_lerobot.py``).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pld_nodes.core.actions import ACTION_NAMES
from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.observation import PROPRIO_LAYOUT

_LOG = logging.getLogger(__name__)
CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")


@dataclass(frozen=True)
class ExportResult:
    root: Path
    episodes: int
    frames: int
    tasks: list[str]
    data_files: int


def _state_names() -> list[str]:
    names = []
    for part, sl in PROPRIO_LAYOUT.items():
        names += [f"{part}_{i}" for i in range(sl.stop - sl.start)]
    return names


def _png(frame: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not PNG-encode a frame of shape {frame.shape}")
    return buf.tobytes()


def _stats(x: np.ndarray, image: bool = False) -> dict[str, list]:
    """LeRobot's stats shapes: vectors (D,), scalars (1,), images per channel (3,1,1) in [0, 1]."""
    if image:
        axes: tuple[int, ...] = (0, 2, 3)
        x = x.astype(np.float64).transpose(0, 3, 1, 2) / 255.0

        def reduce(fn, **kw):
            return fn(x, axis=axes, keepdims=True, **kw)[0]
    else:
        x = x.astype(np.float64) if x.dtype == bool else x
        x = x[:, None] if x.ndim == 1 else x

        def reduce(fn, **kw):
            return fn(x, axis=0, **kw)

    out = {"min": reduce(np.min), "max": reduce(np.max), "mean": reduce(np.mean),
           "std": reduce(np.std), "count": np.array([len(x)])}  # fmt: skip
    out |= {name: reduce(np.quantile, q=q) for name, q in QUANTILES.items()}
    return {k: np.asarray(v).tolist() for k, v in out.items()}


class _StatsAccumulator:
    """Exact global stats over all frames (low-dim kept whole; images subsampled per episode to
    at most ``image_frames`` frames so memory stays bounded)."""

    def __init__(self, image_frames: int = 16) -> None:
        self.values: dict[str, list[np.ndarray]] = {}
        self.images: dict[str, list[np.ndarray]] = {}
        self.image_frames = image_frames

    def add(self, key: str, x: np.ndarray, image: bool = False) -> None:
        if image:
            idx = np.linspace(0, len(x) - 1, min(len(x), self.image_frames)).astype(int)
            self.images.setdefault(key, []).append(np.asarray(x[idx]))
        else:
            self.values.setdefault(key, []).append(np.asarray(x))

    def result(self) -> dict[str, Any]:
        out = {k: _stats(np.concatenate(v)) for k, v in self.values.items()}
        out |= {k: _stats(np.concatenate(v), image=True) for k, v in self.images.items()}
        return out


def _fps(store: EpisodeStore, indices: Sequence[int], default: float) -> float:
    if "stamp" not in store.keys:
        return default
    periods = [np.diff(store.get_episode(i, ["stamp"])["stamp"]) for i in indices[:20]]
    periods = [p for p in periods if len(p)]
    if not periods:
        return default
    return float(round(1.0 / float(np.median(np.concatenate(periods))), 3))


def export_lerobot(
    store_path: str | Path,
    out: str | Path,
    *,
    episodes: Iterable[int] | None = None,
    fps: float = 0.0,
    robot_type: str = "franka",
    data_files_size_in_mb: float = 100.0,
    chunks_size: int = 1000,
    overwrite: bool = False,
) -> ExportResult:
    """Write the store's episodes (default: the successful ones) as a LeRobotDataset v3.0.

    ``fps`` 0 = measured from the recorded stamps (20 Hz when the store has none).
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = EpisodeStore.open(store_path)
    indices = list(store.episodes(success=True) if episodes is None else episodes)
    if not indices:
        raise ValueError(f"{store_path}: no episodes to export")
    root = Path(out)
    if root.exists():
        if not overwrite:
            raise FileExistsError(f"{root} exists; pass overwrite=True to replace it")
        shutil.rmtree(root)
    cameras = sorted(k.removeprefix("images/") for k in store.keys if k.startswith("images/"))
    has_env = "object_state" in store.keys
    fps = fps or _fps(store, indices, 20.0)
    keys = ["proprio", "action", "reward"] + (["object_state"] if has_env else [])
    keys += [f"images/{c}" for c in cameras]

    tasks: dict[str, int] = {}
    episode_rows: list[dict[str, Any]] = []
    stats = _StatsAccumulator()
    writer: Any = None
    file_number, file_bytes, index = 0, 0.0, 0
    feature_shapes: dict[str, list[int]] = {}
    limit = data_files_size_in_mb * 1e6

    def location(number: int) -> tuple[int, int]:
        return number // chunks_size, number % chunks_size

    try:
        for episode_index, i in enumerate(indices):
            raw = store.get_episode(i, keys)
            attrs = store.episode_attrs(i)
            task = str(attrs.get("instruction") or attrs.get("task") or "")
            task_index = tasks.setdefault(task, len(tasks))
            n = len(raw["action"])
            columns: dict[str, Any] = {
                "observation.state": raw["proprio"].astype(np.float32),
                "action": raw["action"].astype(np.float32),
                "next.reward": raw["reward"].astype(np.float32),
                "next.done": np.arange(n) == n - 1,
                "timestamp": (np.arange(n) / fps).astype(np.float32),
                "frame_index": np.arange(n, dtype=np.int64),
                "episode_index": np.full(n, episode_index, np.int64),
                "index": np.arange(index, index + n, dtype=np.int64),
                "task_index": np.full(n, task_index, np.int64),
            }
            if has_env:
                columns["observation.environment_state"] = raw["object_state"].astype(np.float32)
            for cam in cameras:
                columns[f"observation.images.{cam}"] = raw[f"images/{cam}"]
            table = _table(pa, columns, cameras)
            for key, value in columns.items():
                if key.startswith("observation.images."):
                    stats.add(key, value, image=True)
                    feature_shapes[key] = list(value.shape[1:])
                else:
                    stats.add(key, np.asarray(value))
                    feature_shapes[key] = list(np.asarray(value).shape[1:]) or [1]
            if writer is not None and file_bytes >= limit:
                writer.close()
                writer, file_number, file_bytes = None, file_number + 1, 0.0
            if writer is None:
                chunk, number = location(file_number)
                path = root / DATA_PATH.format(chunk_index=chunk, file_index=number)
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table)
            file_bytes += table.nbytes
            chunk, number = location(file_number)
            episode_rows.append({
                "episode_index": episode_index, "tasks": [task], "length": n,
                "data/chunk_index": chunk, "data/file_index": number,
                "dataset_from_index": index, "dataset_to_index": index + n,
                "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                "source/store_episode": int(i), "source/mode": str(attrs.get("mode", "")),
                "source/success": bool(attrs.get("success", False)),
            })  # fmt: skip
            index += n
    finally:
        if writer is not None:
            writer.close()
    episodes_file = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_file.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), episodes_file)
    ordered = sorted(tasks, key=tasks.__getitem__)
    pd.DataFrame({"task_index": range(len(ordered))}, index=ordered).to_parquet(
        root / "meta" / "tasks.parquet"
    )
    info = _info(feature_shapes, cameras, has_env, robot_type, fps, len(indices), index,
                 len(tasks), chunks_size, data_files_size_in_mb)  # fmt: skip
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    (root / "meta" / "stats.json").write_text(json.dumps(stats.result(), indent=2) + "\n")
    _LOG.info("exported %d episodes (%d frames) to %s", len(indices), index, root)
    return ExportResult(root, len(indices), index, ordered, file_number + 1)


def _table(pa: Any, columns: dict[str, Any], cameras: list[str]) -> Any:
    arrays = {}
    for key, value in columns.items():
        if key.startswith("observation.images."):
            blobs = [{"bytes": _png(frame), "path": None} for frame in value]
            arrays[key] = pa.array(
                blobs, pa.struct([("bytes", pa.binary()), ("path", pa.string())])
            )
        elif np.asarray(value).ndim == 2:
            flat = pa.array(np.asarray(value).reshape(-1), pa.float32())
            arrays[key] = pa.FixedSizeListArray.from_arrays(flat, value.shape[1])
        else:
            arrays[key] = pa.array(value)
    return pa.table(arrays)


def _info(
    shapes: dict[str, list[int]], cameras: list[str], has_env: bool, robot_type: str, fps: float,
    episodes: int, frames: int, tasks: int, chunks_size: int, file_mb: float,
) -> dict[str, Any]:  # fmt: skip
    def scalar(dtype: str) -> dict[str, Any]:
        return {"dtype": dtype, "shape": [1], "names": None}

    features: dict[str, Any] = {
        "observation.state": {"dtype": "float32", "shape": shapes["observation.state"],
                              "names": _state_names()},
        "action": {"dtype": "float32", "shape": shapes["action"], "names": list(ACTION_NAMES)},
        "next.reward": scalar("float32"),
        "next.done": scalar("bool"),
    }  # fmt: skip
    if has_env:
        features["observation.environment_state"] = {
            "dtype": "float32", "shape": shapes["observation.environment_state"], "names": None,
        }  # fmt: skip
    for cam in cameras:
        features[f"observation.images.{cam}"] = {
            "dtype": "image", "shape": shapes[f"observation.images.{cam}"],
            "names": ["height", "width", "channels"],
        }  # fmt: skip
    features |= {"timestamp": scalar("float32")}
    features |= {k: scalar("int64") for k in INDEX_FEATURES[1:]}
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": episodes,
        "total_frames": frames,
        "total_tasks": tasks,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": file_mb,
        "video_files_size_in_mb": 200,
        "fps": fps,
        "splits": {"train": f"0:{episodes}"},
        "data_path": DATA_PATH,
        "video_path": None,
        "features": features,
    }
