"""Dataset sampling, SFT convergence, checkpoints and bit-exact resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from pld_nodes.core.vla.checkpoint import (
    CONFIG_FILE,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from pld_nodes.core.vla.dataset import EpisodeDataset
from pld_nodes.core.vla.model import BuiltinVLA
from pld_nodes.core.vla.text import HashTokenizer
from pld_nodes.core.vla.train import TrainConfig, train_sft


def _dataset(cfg, episodes, seed: int = 0) -> EpisodeDataset:
    return EpisodeDataset(
        episodes,
        cfg.horizon,
        seed=seed,
        image_keys=cfg.image_keys,
        use_object_state=cfg.use_object_state,
        tokenizer=HashTokenizer(cfg.text),
    )


def test_samples_pad_with_the_last_action_and_mask(make_config, episodes) -> None:
    ds = _dataset(make_config("flow"), episodes)
    assert len(ds) == sum(len(ep["actions"]) for ep in episodes)
    last = ds[len(episodes[0]["actions"]) - 2]  # second-to-last step of episode 0
    np.testing.assert_array_equal(last["mask"], [1, 1, 0, 0])
    np.testing.assert_array_equal(last["actions"][2:], episodes[0]["actions"][[-1, -1]])
    np.testing.assert_array_equal(ds.batch_indices(7, 32), ds.batch_indices(7, 32))
    assert not np.array_equal(ds.batch_indices(7, 32), ds.batch_indices(8, 32))
    batch = ds.collate([0, 5])
    assert batch["tokens"].dtype == torch.int64 and batch["actions"].shape == (2, 4, 7)


def test_dataset_rejects_bad_episodes(episodes) -> None:
    bad = [{**episodes[0], "actions": episodes[0]["actions"] * 3}]
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        EpisodeDataset(bad, 4)
    with pytest.raises(ValueError, match="object_state"):
        EpisodeDataset(episodes, 4, use_object_state=True)


def test_train_config_validation(make_config) -> None:
    with pytest.raises(ValueError, match="lr must be > 0, got -1"):
        TrainConfig(model=make_config(), lr=-1.0)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        TrainConfig(model=make_config(), lr_schedule="step")
    cfg = TrainConfig(model=make_config(), steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert cfg.lr_at(0) == pytest.approx(0.1) and cfg.lr_at(10) == pytest.approx(1.0)
    assert cfg.lr_at(99) == pytest.approx(0.1, abs=1e-3)


@pytest.mark.parametrize(
    ("head", "steps", "threshold", "max_mean_err"),
    [("flow", 600, 0.1, 0.1), ("ar", 300, 0.3, 0.02)],
)
def test_both_heads_overfit_the_synthetic_task(
    make_config, episodes, tmp_path: Path, head: str, steps: int, threshold: float, max_mean_err
) -> None:
    cfg = make_config(head)
    train = TrainConfig(model=cfg, steps=steps, batch_size=64, lr=3e-3, progress=False)
    result = train_sft(train, _dataset(cfg, episodes), tmp_path)
    rows = [json.loads(line) for line in result.metrics_path.read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    first = np.mean([r["loss"] for r in rows[:10]])
    assert result.final_loss < threshold < first, (first, result.final_loss)
    # The trained chunk reproduces the known target function.
    ds = _dataset(cfg, episodes)
    batch = ds.collate(range(len(ds)))
    model = load_checkpoint(result.checkpoint).model
    gen = torch.Generator().manual_seed(0)
    pred = model.sample(batch["proprio"], batch["tokens"], generator=gen)
    err = ((pred - batch["actions"]).abs() * batch["mask"][..., None]).sum()
    assert err / (batch["mask"].sum() * 7) < max_mean_err


def test_checkpoint_round_trip_and_config_mismatch(make_config, tmp_path: Path) -> None:
    cfg = make_config("ar", use_object_state=True, object_state_dim=3)
    model = BuiltinVLA(cfg).eval()
    with torch.no_grad():
        model.proprio_mean.fill_(0.5)
    save_checkpoint(model, tmp_path / "ck", {"training_steps": 7})
    loaded = load_checkpoint(tmp_path / "ck", expected_config=cfg)
    assert loaded.metadata["training_steps"] == 7 and loaded.metadata["head"] == "ar"
    proprio, tokens = torch.randn(2, 16), torch.randint(0, 200, (2, 16))
    obj = torch.randn(2, 3)
    torch.testing.assert_close(
        loaded.model.sample(proprio, tokens, obj), model.sample(proprio, tokens, obj)
    )
    assert not any(f.suffix in (".pt", ".pkl", ".bin") for f in (tmp_path / "ck").iterdir())
    with pytest.raises(CheckpointError, match="hidden_dim: expected 32, checkpoint has 64"):
        load_checkpoint(tmp_path / "ck", expected_config=make_config("ar", hidden_dim=32,
                        use_object_state=True, object_state_dim=3))  # fmt: skip
    doc = json.loads((tmp_path / "ck" / CONFIG_FILE).read_text())
    doc["config"]["hidden_dim"] = 32
    (tmp_path / "ck" / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="do not match its config"):
        load_checkpoint(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="not a built-in VLA checkpoint"):
        load_checkpoint(tmp_path / "missing")


@pytest.mark.parametrize("head", ["flow", "ar"])
def test_resume_matches_uninterrupted_training(make_config, episodes, tmp_path: Path, head) -> None:
    cfg = make_config(head)
    train = TrainConfig(
        model=cfg, steps=6, batch_size=16, lr=1e-3, checkpoint_every=3, progress=False
    )
    full = train_sft(train, _dataset(cfg, episodes), tmp_path / "full")
    # Simulate a crash after step 3: the step-6 checkpoint and metrics never got written.
    shutil.copytree(tmp_path / "full", tmp_path / "crashed")
    shutil.rmtree(tmp_path / "crashed" / "checkpoints" / "step_00000006")
    assert latest_checkpoint(tmp_path / "crashed" / "checkpoints").name == "step_00000003"
    resumed = train_sft(train, _dataset(cfg, episodes), tmp_path / "crashed")
    assert resumed.resumed_from_step == 3
    for name in ("model.safetensors", "optimizer.safetensors"):
        a = load_file(str(full.checkpoint / name))
        b = load_file(str(resumed.checkpoint / name))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert full.metrics_path.read_text().count("\n") == 6
    losses = [json.loads(x)["loss"] for x in full.metrics_path.read_text().splitlines()]
    resumed_losses = [json.loads(x)["loss"] for x in resumed.metrics_path.read_text().splitlines()]
    assert losses == resumed_losses


def test_resume_refuses_a_different_architecture(make_config, episodes, tmp_path: Path) -> None:
    cfg = make_config("flow")
    train = TrainConfig(model=cfg, steps=2, batch_size=8, checkpoint_every=1, progress=False)
    train_sft(train, _dataset(cfg, episodes), tmp_path)
    other = TrainConfig(model=make_config("flow", hidden_dim=32), steps=4, progress=False)
    with pytest.raises(CheckpointError, match="hidden_dim"):
        train_sft(other, _dataset(cfg, episodes), tmp_path)
