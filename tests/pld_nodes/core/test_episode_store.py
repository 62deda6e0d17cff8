"""EpisodeStore on real Zarr v3 files: layout, validation, filters, and crash safety."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from pld_nodes.core.episode_store import EpisodeStore, EpisodeStoreError


def episode(length: int, seed: int, cams: tuple[str, ...] = ("agentview",)) -> dict:
    rng = np.random.default_rng(seed)
    data = {
        "proprio": rng.normal(size=(length, 16)).astype(np.float32),
        "action": rng.uniform(-1, 1, size=(length, 7)).astype(np.float32),
        "reward": np.zeros(length, np.float32),
    }
    for cam in cams:
        data[f"images/{cam}"] = rng.integers(0, 255, size=(length, 8, 8, 3), dtype=np.uint8)
    return data


def test_layout_and_round_trip(tmp_path: Path) -> None:
    store = EpisodeStore.create(tmp_path / "s.zarr", software_version="test")
    eps = [episode(5, 0), episode(3, 1)]
    assert store.add_episode(eps[0], {"success": True, "mode": "hybrid", "T_base": 2}) == 0
    assert store.add_episode(eps[1], {"success": False, "mode": "base"}) == 1
    reopened = EpisodeStore.open(tmp_path / "s.zarr")
    assert reopened.n_episodes == 2 and reopened.n_steps == 8
    assert reopened.keys == ["action", "images/agentview", "proprio", "reward"]
    for i, ep in enumerate(eps):
        got = reopened.get_episode(i)
        for key, value in ep.items():
            np.testing.assert_array_equal(got[key], value)
    assert reopened.episode_attrs(0) == {
        "success": True,
        "mode": "hybrid",
        "T_base": 2,
        "length": 5,
    }
    assert reopened.episodes(success=True) == [0]
    assert reopened.episodes(mode="base", success=False) == [1]
    # Diffusion-Policy-style layout, readable with plain zarr.
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    np.testing.assert_array_equal(root["meta/episode_ends"][:], [5, 8])
    assert root["data/proprio"].shape == (8, 16)
    assert root.attrs["schema_version"] == 1


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda e: e | {"action": e["action"][:2]}, "same number"),
        (lambda e: {k: v for k, v in e.items() if k != "reward"}, "missing ['reward']"),
        (lambda e: e | {"extra": e["reward"]}, "extra ['extra']"),
        (lambda e: e | {"proprio": e["proprio"].astype(np.float64)}, "key 'proprio'"),
        (lambda e: e | {"proprio": e["proprio"][:, :8]}, "key 'proprio'"),
    ],
)
def test_inconsistent_episodes_are_refused_and_store_unchanged(tmp_path, mutate, fragment) -> None:
    store = EpisodeStore.create(tmp_path / "s.zarr")
    store.add_episode(episode(4, 0), {"success": True})
    with pytest.raises(EpisodeStoreError, match=None) as info:
        store.add_episode(mutate(episode(4, 1)), {"success": True})
    assert fragment in str(info.value)
    assert EpisodeStore.open(tmp_path / "s.zarr").n_episodes == 1


def test_bad_attributes_and_modes(tmp_path: Path) -> None:
    store = EpisodeStore.create(tmp_path / "s.zarr")
    with pytest.raises(EpisodeStoreError, match="not finite"):
        store.add_episode(episode(2, 0), {"xi": float("nan")})
    with pytest.raises(EpisodeStoreError, match="exists and is not empty"):
        EpisodeStore.create(tmp_path / "s.zarr")
    with pytest.raises(EpisodeStoreError, match="opened read-only"):
        EpisodeStore.open(tmp_path / "s.zarr").add_episode(episode(2, 0), {})
    with pytest.raises(EpisodeStoreError, match="no episode store"):
        EpisodeStore.open(tmp_path / "missing.zarr")
    with pytest.raises(IndexError, match="out of range"):
        store.get_episode(0)


@settings(max_examples=15, deadline=None)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=6))
def test_episode_boundaries_property(tmp_path_factory, lengths: list[int]) -> None:
    path = tmp_path_factory.mktemp("prop") / "s.zarr"
    store = EpisodeStore.create(path)
    for i, n in enumerate(lengths):
        store.add_episode(episode(n, i, cams=()), {"i": i})
    store = EpisodeStore.open(path)
    assert [store.episode_length(i) for i in range(len(lengths))] == lengths
    assert store.n_steps == sum(lengths)
    for i, n in enumerate(lengths):
        np.testing.assert_array_equal(
            store.get_episode(i, ["proprio"])["proprio"], episode(n, i, cams=())["proprio"]
        )


WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    from test_episode_store import episode
    from pld_nodes.core.episode_store import EpisodeStore
    store = EpisodeStore.open(sys.argv[1], mode="a")
    i = store.n_episodes
    while True:
        store.add_episode(episode(20 + i % 7, i), {"i": i})
        print(i, flush=True)
        i += 1
""")


def test_kill_during_writes_keeps_committed_episodes(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    EpisodeStore.create(path)
    here = str(Path(__file__).parent)
    rng = np.random.default_rng(0)
    for _round in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), here], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one episode committed in this round
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        store = EpisodeStore.open(path, mode="a")  # repairs the interrupted write
        assert store.n_episodes >= 1
        for i in range(store.n_episodes):
            assert store.episode_attrs(i)["i"] == i
            want = episode(20 + i % 7, i)
            got = store.get_episode(i)
            for key in want:
                np.testing.assert_array_equal(got[key], want[key])
        assert all(store.array(k).shape[0] == store.n_steps for k in store.keys)
