"""Runs in the lerobot venv: load an export with LeRobotDataset and compare it with the
expected arrays (written by the test as .npz). Exit 0 and print OK when everything matches."""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

root, expected_path = sys.argv[1], sys.argv[2]
expected = np.load(expected_path)
meta = json.loads(str(expected["meta"]))
ds = LeRobotDataset(repo_id="local/pld-export", root=root)
assert len(ds) == meta["frames"] and ds.num_episodes == meta["episodes"], (len(ds), ds.num_episodes)
assert ds.fps == meta["fps"], ds.fps
for i in range(len(ds)):
    item = ds[i]
    np.testing.assert_array_equal(item["observation.state"].numpy(), expected["state"][i])
    np.testing.assert_array_equal(item["action"].numpy(), expected["action"][i])
    np.testing.assert_array_equal(
        item["observation.environment_state"].numpy(), expected["env_state"][i]
    )
    for cam in meta["cameras"]:
        img = item[f"observation.images.{cam}"]
        assert img.shape == (3, *expected[f"img_{cam}"].shape[1:3]) and img.dtype == torch.float32
        pixels = (img.numpy().transpose(1, 2, 0) * 255.0).round().astype(np.uint8)
        np.testing.assert_array_equal(pixels, expected[f"img_{cam}"][i])
    assert item["episode_index"].item() == expected["episode"][i]
    assert item["task"] == meta["tasks"][int(expected["episode"][i])], item["task"]
starts = [int(x) for x in ds.meta.episodes["dataset_from_index"]]
ends = [int(x) for x in ds.meta.episodes["dataset_to_index"]]
assert starts == meta["starts"] and ends == meta["ends"], (starts, ends)
# action chunks with padding at the episode end (what chunked policies train on)
horizon = [k / ds.fps for k in range(4)]
chunked = LeRobotDataset(
    repo_id="local/pld-export", root=root, delta_timestamps={"action": horizon}
)
last = chunked[ends[0] - 2]
assert last["action_is_pad"].tolist() == [False, False, True, True], last["action_is_pad"]
assert ds.meta.stats is not None and "action" in ds.meta.stats
print("OK", len(ds), "frames", ds.num_episodes, "episodes")
