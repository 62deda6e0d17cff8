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


def test_distillation_set_is_whole_successful_hybrid_episodes_with_executed_actions(tmp_path):
    from pld_nodes.core.episode_data import distillation_indices, load_distillation_episodes
    from pld_nodes.core.episode_store import EpisodeStore

    store = EpisodeStore.create(tmp_path / "s.zarr")
    rng = np.random.default_rng(0)

    def ep(n):
        return {
            "proprio": rng.normal(size=(n, 16)).astype(np.float32),
            "action": rng.uniform(-1, 1, (n, 7)).astype(np.float32),
            "base_action": rng.uniform(-1, 1, (n, 7)).astype(np.float32),
            "phase": (np.arange(n) >= 3).astype(np.int8),
        }

    kinds = [
        ({"mode": "hybrid", "success": True, "t_base": 3}, True),
        ({"mode": "hybrid", "success": False}, False),
        ({"mode": "base", "success": True}, False),
        ({"mode": "hybrid", "success": True, "stage": "eval"}, False),
        ({"mode": "hybrid", "success": True, "discarded": True}, False),
        ({"mode": "residual", "success": True}, False),
    ]
    episodes = [ep(8) for _ in kinds]
    for data, (attrs, _) in zip(episodes, kinds, strict=True):
        store.add_episode(data, attrs | {"instruction": "lift"})
    assert distillation_indices(store) == [0]
    assert distillation_indices(store, modes=("hybrid", "residual")) == [0, 5]
    (only,) = load_distillation_episodes(store)
    np.testing.assert_array_equal(only["actions"], episodes[0]["action"])  # executed, whole
    assert len(only["actions"]) == 8 and only["instruction"] == "lift"
