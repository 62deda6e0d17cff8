import numpy as np

from pld_nodes.core.episode_data import add_demo_episodes, load_training_episodes
from pld_nodes.core.episode_store import EpisodeStore


def demo(length: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "proprio": rng.normal(size=(length, 16)).astype(np.float32),
        "actions": rng.uniform(-1, 1, (length, 7)).astype(np.float32),
        "object_state": rng.normal(size=(length, 7)).astype(np.float32),
        "images": {"agentview": rng.integers(0, 255, (length, 8, 8, 3), dtype=np.uint8)},
        "instruction": "lift the red cube",
        "task": "lift",
        "seed": seed,
    }


def test_round_trip_through_the_store(tmp_path) -> None:
    store = EpisodeStore.create(tmp_path / "d.zarr")
    eps = [demo(5, 0), demo(7, 1)]
    assert add_demo_episodes(store, eps, source="scripted_expert", noise_std=0.1) == [0, 1]
    attrs = store.episode_attrs(1)
    assert attrs["seed"] == 1 and attrs["source"] == "scripted_expert" and attrs["success"]
    assert attrs["instruction"] == "lift the red cube"
    loaded = load_training_episodes(
        EpisodeStore.open(tmp_path / "d.zarr"), image_keys=["agentview"]
    )
    for got, want in zip(loaded, eps, strict=True):
        for key in ("proprio", "actions", "object_state"):
            np.testing.assert_array_equal(got[key], want[key])
        np.testing.assert_array_equal(got["images"]["agentview"], want["images"]["agentview"])
        assert got["instruction"] == want["instruction"]


def test_only_successful_episodes_by_default(tmp_path) -> None:
    store = EpisodeStore.create(tmp_path / "d.zarr")
    add_demo_episodes(store, [demo(3, 0)])
    add_demo_episodes(store, [demo(3, 1)], success=False)
    assert [ep["proprio"].shape[0] for ep in load_training_episodes(store)] == [3]
    assert len(load_training_episodes(store, indices=[0, 1])) == 2
