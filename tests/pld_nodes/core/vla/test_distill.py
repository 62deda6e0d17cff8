"""Distillation: weighted demo mixing, fine-tuning from a base, resume, and torchrun data
parallelism (2 gloo ranks must produce the single-process result)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.vla.checkpoint import latest_checkpoint, load_checkpoint
from pld_nodes.core.vla.dataset import EpisodeDataset
from pld_nodes.core.vla.distill import DistillConfig, build_distill_dataset
from pld_nodes.core.vla.text import HashTokenizer
from pld_nodes.core.vla.train import TrainConfig, train_sft

from .conftest import synthetic_episodes, tiny_config


def _dataset(cfg, episodes, **kw) -> EpisodeDataset:
    return EpisodeDataset(episodes, cfg.horizon, use_object_state=cfg.use_object_state, **kw)


@settings(max_examples=15, deadline=None)
@given(fraction=st.floats(0.05, 0.95), n_pld=st.integers(1, 6), n_demo=st.integers(1, 6))
def test_episode_weights_give_each_source_its_share_of_every_batch(fraction, n_pld, n_demo):
    pld = synthetic_episodes(n_pld, seed=1)
    demos = [
        {**e, "actions": e["actions"][: 3 + i]}
        for i, e in enumerate(synthetic_episodes(n_demo, seed=2))
    ]
    demos = [{**e, "proprio": e["proprio"][: len(e["actions"])]} for e in demos]
    weights = [(1 - fraction) / n_pld] * n_pld + [fraction / n_demo] * n_demo
    ds = EpisodeDataset(pld + demos, 4, episode_weights=weights)
    first_demo_sample = sum(len(e["actions"]) for e in pld)
    drawn = np.concatenate([ds.batch_indices(step, 256) for step in range(40)])
    share = np.mean(drawn >= first_demo_sample)
    assert share == pytest.approx(fraction, abs=0.035)  # ~5 standard errors at n = 10240


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0], [1.0, float("nan")]])
def test_bad_episode_weights_are_refused(weights) -> None:
    with pytest.raises(ValueError, match="episode_weights"):
        EpisodeDataset(synthetic_episodes(2), 4, episode_weights=weights)


@pytest.fixture
def base_checkpoint(tmp_path: Path) -> Path:
    """A tiny base trained on one set of episodes."""
    cfg = tiny_config("flow")
    train = TrainConfig(
        model=cfg, steps=30, batch_size=16, lr=1e-3, checkpoint_every=30, progress=False
    )
    return train_sft(
        train, _dataset(cfg, synthetic_episodes(4, seed=0)), tmp_path / "base"
    ).checkpoint


def test_fine_tuning_starts_from_the_base_and_keeps_its_normalisation(base_checkpoint, tmp_path):
    base = load_checkpoint(base_checkpoint)
    shifted = [{**e, "proprio": e["proprio"] * 3.0 + 1.0} for e in synthetic_episodes(4, seed=5)]
    train = TrainConfig(
        model=base.config, steps=1, batch_size=8, lr=1e-9, progress=False,
        init_checkpoint=str(base_checkpoint),
    )  # fmt: skip
    tuned = load_checkpoint(
        train_sft(train, _dataset(base.config, shifted), tmp_path / "ft").checkpoint
    )
    for (name, a), b in zip(
        base.model.state_dict().items(), tuned.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)  # incl. normalisation buffers
    # the same run from scratch would have a fresh init and the new data's statistics
    scratch = TrainConfig(model=base.config, steps=1, batch_size=8, lr=1e-9, progress=False)
    fresh = load_checkpoint(
        train_sft(scratch, _dataset(base.config, shifted), tmp_path / "s").checkpoint
    )
    fresh_mean = fresh.model.normalization().proprio_mean
    assert not np.allclose(fresh_mean, base.model.normalization().proprio_mean)


def test_fine_tuning_lowers_the_loss_on_the_new_data_and_resumes_exactly(base_checkpoint, tmp_path):
    base = load_checkpoint(base_checkpoint)
    new = synthetic_episodes(4, seed=9)
    train = TrainConfig(
        model=base.config, steps=40, batch_size=16, lr=1e-3, checkpoint_every=20, progress=False,
        init_checkpoint=str(base_checkpoint),
    )  # fmt: skip
    full = train_sft(train, _dataset(base.config, new), tmp_path / "full")
    ds = _dataset(base.config, new)
    before = _data_loss(base.model, ds)
    after = _data_loss(load_checkpoint(full.checkpoint).model, ds)
    assert after < 0.8 * before, (before, after)
    shutil.copytree(tmp_path / "full", tmp_path / "crashed")
    shutil.rmtree(tmp_path / "crashed" / "checkpoints" / "step_00000040")
    resumed = train_sft(train, _dataset(base.config, new), tmp_path / "crashed")
    assert resumed.resumed_from_step == 20
    a, b = (
        load_file(str(full.checkpoint / "model.safetensors")),
        load_file(str(resumed.checkpoint / "model.safetensors")),
    )
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def _data_loss(model, ds: EpisodeDataset) -> float:
    """SFT loss on every sample of ``ds`` with fixed flow noise (comparable across models)."""
    batch = ds.collate(range(len(ds)), HashTokenizer(model.config.text))
    with torch.no_grad():
        return float(
            np.mean([model.loss(batch, torch.Generator().manual_seed(i)) for i in range(4)])
        )


def test_distill_dataset_mixes_demos_only_when_asked(tmp_path) -> None:
    pld, demos = synthetic_episodes(3, seed=1), synthetic_episodes(2, seed=2)
    for e in pld + demos:
        e["object_state"] = np.zeros((len(e["actions"]), 7), np.float32)
    cfg = DistillConfig(base_checkpoint="shipped:lift_flow", demo_fraction=0.0)
    assert build_distill_dataset(cfg, pld, demos).num_episodes == 3
    mixed = build_distill_dataset(DistillConfig(demo_fraction=0.3), pld, demos)
    assert mixed.num_episodes == 5 and mixed.describe()["weighted"]
    with pytest.raises(ValueError, match="no demos"):
        build_distill_dataset(DistillConfig(demo_fraction=0.3), pld, [])
    with pytest.raises(ValueError, match="no episodes"):
        build_distill_dataset(cfg, [], demos)
    with pytest.raises(ValueError, match="demo_fraction"):
        DistillConfig(demo_fraction=1.0)


def _store_with_hybrid_episodes(path: Path, n: int = 3) -> Path:
    from pld_nodes.core.vla.demos import collect_expert_demos

    store = EpisodeStore.create(path)
    for ep in collect_expert_demos("lift", n, seed=0, max_steps=60):
        data = {
            "proprio": ep["proprio"],
            "action": ep["actions"],
            "object_state": ep["object_state"],
        }
        store.add_episode(
            data, {"success": True, "mode": "hybrid", "instruction": ep["instruction"]}
        )
    return path


def _distill_cmd(store: Path, out: Path) -> list[str]:
    return ["-m", "pld_nodes.tools.vla", "distill", "--store", str(store), "--base",
            "shipped:lift_ar", "--out", str(out), "--steps", "3", "--batch", "16"]  # fmt: skip


def test_torchrun_two_ranks_reproduce_single_process_training(tmp_path: Path) -> None:
    """The AR head's loss has no noise, so averaged gradients of two half-batches must equal the
    full-batch gradient: both runs end with the same weights (up to float summation order)."""
    store = _store_with_hybrid_episodes(tmp_path / "eps.zarr")
    env = dict(os.environ, OMP_NUM_THREADS="1", MUJOCO_GL="egl")
    single = subprocess.run([sys.executable, *_distill_cmd(store, tmp_path / "one")], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--rdzv_backend", "c10d", "--rdzv_endpoint", "localhost:0"]  # fmt: skip
    dist = subprocess.run([*torchrun, *_distill_cmd(store, tmp_path / "two")], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert dist.returncode == 0, dist.stdout[-3000:] + dist.stderr[-3000:]
    assert "rank 1/2 joined the gloo process group" in dist.stderr
    a = load_file(str(latest_checkpoint(tmp_path / "one" / "checkpoints") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "two" / "checkpoints") / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=key)
    shipped = load_checkpoint(_shipped("lift_ar")).model.state_dict()
    moved = sum(not torch.equal(shipped[k], a[k]) for k in a)
    assert moved > 10  # training did change the weights, so equality above is not trivial
    assert (tmp_path / "two" / "metrics.jsonl").read_text().count("\n") == 3  # rank 0 only


def _shipped(name: str) -> Path:
    from pld_nodes.assets import base_policy_path

    return Path(base_policy_path(name))
