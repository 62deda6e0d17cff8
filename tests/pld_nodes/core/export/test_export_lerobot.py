"""Episode store → LeRobotDataset v3.0: layout, values, file roll-over, and loading with the
official ``lerobot`` (0.4.4, its own venv built by scripts/setup_lerobot_venv.sh)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.export_lerobot import export_lerobot

REPO = Path(__file__).resolve().parents[4]
CAMERAS = ("agentview", "wrist")
LENGTHS = (7, 4, 5)
SUCCESS = (True, False, True)
TASKS = ("lift the red cube", "lift the red cube", "stack the blocks")


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, list[dict]]:
    rng = np.random.default_rng(0)
    s = EpisodeStore.create(tmp_path / "eps.zarr")
    episodes = []
    for n, ok, task in zip(LENGTHS, SUCCESS, TASKS, strict=True):
        data = {
            "proprio": rng.normal(size=(n, 16)).astype(np.float32),
            "object_state": rng.normal(size=(n, 7)).astype(np.float32),
            "action": rng.uniform(-1, 1, (n, 7)).astype(np.float32),
            "reward": np.eye(n, dtype=np.float32)[-1] * ok,
            "stamp": 100.0 + 0.05 * np.arange(n),
        }
        data |= {f"images/{c}": rng.integers(0, 256, (n, 12, 16, 3), np.uint8) for c in CAMERAS}
        s.add_episode(data, {"success": ok, "instruction": task, "mode": "hybrid"})
        episodes.append(data)
    return tmp_path / "eps.zarr", episodes


def test_export_writes_the_v3_layout_with_exact_values(store, tmp_path: Path) -> None:
    path, episodes = store
    result = export_lerobot(path, tmp_path / "ds")
    kept = [e for e, ok in zip(episodes, SUCCESS, strict=True) if ok]  # default: successes
    assert (result.episodes, result.frames) == (2, 12) and result.tasks == [TASKS[0], TASKS[2]]
    info = json.loads((tmp_path / "ds/meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20.0
    assert info["total_frames"] == 12 and info["total_tasks"] == 2
    assert info["features"]["observation.images.wrist"]["shape"] == [12, 16, 3]
    data = pq.read_table(tmp_path / "ds/data/chunk-000/file-000.parquet").to_pydict()
    assert data["index"] == list(range(12)) and data["episode_index"] == [0] * 7 + [1] * 5
    assert data["frame_index"] == list(range(7)) + list(range(5))
    np.testing.assert_array_equal(
        np.array(data["action"], np.float32), np.concatenate([e["action"] for e in kept])
    )
    frames = np.concatenate([e["images/wrist"] for e in kept])
    for k, blob in enumerate(data["observation.images.wrist"]):
        decoded = cv2.cvtColor(
            cv2.imdecode(np.frombuffer(blob["bytes"], np.uint8), cv2.IMREAD_COLOR),
            cv2.COLOR_BGR2RGB,
        )
        np.testing.assert_array_equal(decoded, frames[k])
    assert data["next.done"] == [False] * 6 + [True] + [False] * 4 + [True]
    episodes_meta = pq.read_table(
        tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet"
    ).to_pydict()
    assert episodes_meta["dataset_from_index"] == [0, 7] and episodes_meta["dataset_to_index"] == [
        7,
        12,
    ]
    assert episodes_meta["source/store_episode"] == [0, 2]
    tasks = pd.read_parquet(tmp_path / "ds/meta/tasks.parquet")
    assert list(tasks.index) == [TASKS[0], TASKS[2]] and list(tasks["task_index"]) == [0, 1]
    stats = json.loads((tmp_path / "ds/meta/stats.json").read_text())
    np.testing.assert_allclose(
        stats["action"]["mean"], np.concatenate([e["action"] for e in kept]).mean(0), atol=1e-6
    )
    assert np.array(stats["observation.images.agentview"]["mean"]).shape == (3, 1, 1)


def test_data_files_roll_over_and_episodes_point_to_their_file(store, tmp_path: Path) -> None:
    path, episodes = store
    result = export_lerobot(
        path, tmp_path / "ds", episodes=[0, 1, 2], data_files_size_in_mb=1e-4, chunks_size=2
    )
    assert result.data_files == 3
    meta = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert list(zip(meta["data/chunk_index"], meta["data/file_index"], strict=True)) == [
        (0, 0),
        (0, 1),
        (1, 0),
    ]
    for e, (chunk, number) in enumerate(
        zip(meta["data/chunk_index"], meta["data/file_index"], strict=True)
    ):
        table = pq.read_table(
            tmp_path / f"ds/data/chunk-{chunk:03d}/file-{number:03d}.parquet"
        ).to_pydict()
        np.testing.assert_array_equal(
            np.array(table["observation.state"], np.float32), episodes[e]["proprio"]
        )


def test_export_refuses_an_existing_directory_and_an_empty_selection(store, tmp_path: Path) -> None:
    path, _ = store
    export_lerobot(path, tmp_path / "ds")
    with pytest.raises(FileExistsError):
        export_lerobot(path, tmp_path / "ds")
    with pytest.raises(ValueError, match="no episodes"):
        export_lerobot(path, tmp_path / "other", episodes=[])


@pytest.fixture(scope="session")
def lerobot_python() -> Path:
    """The lerobot check venv (built once, ~40 s; a file lock serialises parallel builders)."""
    venv = REPO / ".venv-peers" / "lerobot"
    venv.parent.mkdir(exist_ok=True)
    with open(venv.parent / ".lerobot.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(
            ["bash", str(REPO / "scripts/setup_lerobot_venv.sh")], check=True, timeout=900
        )
    return venv / "bin" / "python"


def test_the_official_lerobot_loader_reads_the_export(store, tmp_path, lerobot_python) -> None:
    path, episodes = store
    result = export_lerobot(path, tmp_path / "ds", episodes=[0, 1, 2])
    expected = {
        "state": np.concatenate([e["proprio"] for e in episodes]),
        "action": np.concatenate([e["action"] for e in episodes]),
        "env_state": np.concatenate([e["object_state"] for e in episodes]),
        "episode": np.repeat(np.arange(3), LENGTHS),
        **{f"img_{c}": np.concatenate([e[f"images/{c}"] for e in episodes]) for c in CAMERAS},
    }
    starts = np.cumsum((0, *LENGTHS[:-1])).tolist()
    ends = np.cumsum(LENGTHS).tolist()
    meta = {"frames": result.frames, "episodes": 3, "fps": 20.0, "cameras": list(CAMERAS),
            "tasks": list(TASKS), "starts": starts, "ends": ends}  # fmt: skip
    np.savez(tmp_path / "expected.npz", meta=json.dumps(meta), **expected)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf_cache"),
               HF_LEROBOT_HOME=str(tmp_path / "lerobot_home"))  # fmt: skip
    check = Path(__file__).with_name("lerobot_check.py")
    args = [str(lerobot_python), str(check), str(tmp_path / "ds"), str(tmp_path / "expected.npz")]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and "OK 16 frames 3 episodes" in proc.stdout, (
        proc.stdout[-3000:] + proc.stderr[-3000:]
    )
