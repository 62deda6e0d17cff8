"""Supervised fine-tuning (behaviour cloning) of the built-in VLA on demonstration episodes.

Every source of randomness in a step (batch indices, flow noise and times) is a pure function
of ``(seed, step)``, and checkpoints hold weights, AdamW moments and the step, so a run that is
killed and resumed produces bit-identical weights to an uninterrupted one (on the same device).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from pld_nodes.core.vla.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_training_state,
    save_training_checkpoint,
)
from pld_nodes.core.vla.config import VLAConfig
from pld_nodes.core.vla.dataset import EpisodeDataset
from pld_nodes.core.vla.distributed import init_from_env
from pld_nodes.core.vla.model import BuiltinVLA
from pld_nodes.core.vla.text import HashTokenizer

_LOG = logging.getLogger(__name__)
SCHEDULES = ("cosine", "constant")
METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    """One SFT run.

    Attributes:
        model: architecture to train.
        steps: total optimiser steps (a resumed run continues up to this).
        batch_size: samples per step.
        lr: peak learning rate (AdamW).
        lr_schedule: ``"cosine"`` (decay to ``min_lr_ratio * lr``) or ``"constant"``.
        warmup_steps: linear warm-up from 0 to ``lr``.
        min_lr_ratio: final lr of the cosine schedule as a fraction of ``lr``.
        weight_decay: AdamW decoupled weight decay.
        grad_clip: max global gradient norm; 0 disables clipping.
        checkpoint_every: steps between checkpoints (the last step always gets one).
        keep_checkpoints: most recent checkpoints kept on disk.
        seed: model init, batch sampling and flow noise.
        progress: show a progress bar with ETA.
        device: torch device for training ("cpu", "cuda").
        torch_threads: intra-op CPU threads while training (restored afterwards); ``None``
            leaves torch's setting. 1 is fastest for these small models: with more threads
            OpenMP spin-waits make the AR head's many small ops 10-50x slower whenever
            another process competes for the cores.
        init_checkpoint: fine-tune: start from this checkpoint's weights *and* input
            normalisation (a policy keeps the input scaling it was trained with) instead of a
            fresh init; its architecture must equal ``model``. Empty: train from scratch.

    Under ``torchrun`` (WORLD_SIZE > 1) the global ``batch_size`` is split over the ranks and
    gradients are averaged (see ``pld_nodes.core.vla.distributed``).
    """

    model: VLAConfig
    steps: int = 2000
    batch_size: int = 128
    lr: float = 3e-4
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    seed: int = 0
    progress: bool = True
    device: str = "cpu"
    torch_threads: int | None = 1
    init_checkpoint: str = ""

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {SCHEDULES}, got {self.lr_schedule!r}")
        if self.warmup_steps < 0 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps!r}) must be >= 0 and min_lr_ratio "
                f"({self.min_lr_ratio!r}) in [0, 1]"
            )
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1 or None, got {self.torch_threads!r}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(
                f"weight_decay ({self.weight_decay!r}) and grad_clip ({self.grad_clip!r}) "
                "must be >= 0"
            )

    def lr_at(self, step: int) -> float:
        """Learning rate used for optimiser step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.lr_schedule == "constant":
            return self.lr
        span = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        floor = self.min_lr_ratio
        return self.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass(frozen=True)
class TrainResult:
    """Where the run ended and what it produced."""

    checkpoint: Path
    steps: int
    final_loss: float
    """Mean loss over the last (up to) 50 steps run in this call (nan if none ran)."""
    wall_time_s: float
    resumed_from_step: int
    metrics_path: Path


def _step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    entropy = [seed, step, 0x5EED] + ([rank] if rank else [])  # rank 0 = single-process stream
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def _build(config: TrainConfig, device: str) -> tuple[BuiltinVLA, torch.optim.AdamW]:
    if config.init_checkpoint:
        model = load_checkpoint(config.init_checkpoint, expected_config=config.model).model
        model.train()
    else:
        with torch.random.fork_rng(devices=[]):  # do not disturb the caller's global RNG
            torch.manual_seed(config.seed)
            model = BuiltinVLA(config.model)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return model, opt


def _restore(config: TrainConfig, model: BuiltinVLA, opt: torch.optim.Optimizer, path: Path) -> int:
    loaded = load_checkpoint(path, expected_config=config.model)
    model.load_state_dict(loaded.model.state_dict())
    state = load_training_state(path, opt)
    if state.get("train_config") != _train_dict(config):
        _LOG.warning("resuming %s with a different TrainConfig than it was saved with", path)
    return int(state["step"])


def _train_dict(config: TrainConfig) -> dict[str, Any]:
    doc = asdict(config)
    doc.pop("model")
    doc.pop("progress")
    doc.pop("torch_threads")
    return doc


def _save(
    config: TrainConfig,
    model: BuiltinVLA,
    opt: torch.optim.Optimizer,
    root: Path,
    step: int,
    dataset: EpisodeDataset,
    loss: float,
) -> Path:
    meta = {"training_steps": step, "dataset": dataset.describe(), "loss": loss}
    meta["train_config"] = _train_dict(config)
    state = {"step": step, "train_config": _train_dict(config)}
    return save_training_checkpoint(root, step, model, opt, meta, state, config.keep_checkpoints)


def _trim_metrics(path: Path, upto_step: int) -> None:
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= upto_step:
                keep.append(line)
        except (ValueError, KeyError):  # a line cut short by the crash we resume from
            continue
    path.write_text("".join(f"{ln}\n" for ln in keep))


def train_sft(
    config: TrainConfig, dataset: EpisodeDataset, out_dir: str | Path, resume: bool = True
) -> TrainResult:
    """Train (or continue training) and return the last checkpoint; see module docstring.

    ``out_dir`` receives ``checkpoints/step_XXXXXXXX/`` and ``metrics.jsonl`` (one JSON line
    per step: step, loss, lr, grad_norm, time_s). With ``resume`` the latest checkpoint there
    is continued; without, earlier checkpoints and metrics in ``out_dir`` are deleted.
    """
    saved_threads = torch.get_num_threads()
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    try:
        return _train(config, dataset, Path(out_dir), resume)
    finally:
        torch.set_num_threads(saved_threads)


def _train(
    config: TrainConfig, dataset: EpisodeDataset, out_dir: Path, resume: bool
) -> TrainResult:
    root = out_dir / "checkpoints"
    metrics_path = out_dir / METRICS_FILE
    mcfg = config.model
    if dataset.horizon != mcfg.horizon:
        raise ValueError(f"dataset horizon {dataset.horizon} != model horizon {mcfg.horizon}")
    if dataset.use_object_state != mcfg.use_object_state or set(mcfg.image_keys) - set(
        dataset.image_keys
    ):
        raise ValueError(
            f"dataset inputs (object_state={dataset.use_object_state}, images="
            f"{dataset.image_keys}) do not cover the model's (object_state="
            f"{mcfg.use_object_state}, images={mcfg.image_keys})"
        )
    ctx = init_from_env(config.device)
    device = ctx.device(config.device)
    model, opt = _build(config, device)
    if not config.init_checkpoint:  # a fine-tuned policy keeps its original input scaling
        model.set_normalization(dataset.norm_stats())
    start, latest = 0, latest_checkpoint(root) if resume else None
    if latest is not None:
        start = _restore(config, model, opt, latest)
        _LOG.info("resuming from %s (step %d)", latest, start)
    if ctx.is_main:  # one rank owns the files
        if latest is not None:
            _trim_metrics(metrics_path, start)
        else:
            shutil.rmtree(root, ignore_errors=True)
            metrics_path.unlink(missing_ok=True)
        root.mkdir(parents=True, exist_ok=True)
    ctx.barrier()
    tokenizer = HashTokenizer(mcfg.text)
    model.train()
    losses: list[float] = []
    checkpoint = latest
    t0 = time.perf_counter()
    show = config.progress and ctx.is_main
    bar = tqdm(total=config.steps, initial=start, disable=not show, desc=mcfg.name)
    log = metrics_path.open("a") if ctx.is_main else None
    try:
        for step in range(start, config.steps):
            lr = config.lr_at(step)
            for group in opt.param_groups:
                group["lr"] = lr
            indices = ctx.shard(dataset.batch_indices(step, config.batch_size))
            batch = dataset.collate(indices, tokenizer)
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model.loss(batch, _step_generator(config.seed, step, ctx.rank))
            loss = loss * ctx.weight_share(batch["mask"].sum().clamp(min=1.0))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            ctx.average_gradients(model.parameters())
            clip = config.grad_clip if config.grad_clip > 0 else float("inf")
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
            opt.step()
            losses.append(ctx.mean(loss.item(), device))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
            last = (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps
            if log is not None:
                row = {"step": step + 1, "loss": losses[-1], "lr": lr, "grad_norm": grad_norm}
                row["time_s"] = round(time.perf_counter() - t0, 4)
                log.write(json.dumps(row) + "\n")
                if last:
                    log.flush()
            if last:
                recent = float(np.mean(losses[-50:]))
                checkpoint = root / f"step_{step + 1:08d}"
                if ctx.is_main:
                    checkpoint = _save(config, model, opt, root, step + 1, dataset, recent)
                ctx.barrier()
    finally:
        if log is not None:
            log.close()
    bar.close()
    ctx.check_in_sync(model)
    if checkpoint is None:
        raise RuntimeError(f"no checkpoint written under {root}")
    wall = time.perf_counter() - t0
    final = float(np.mean(losses[-50:])) if losses else float("nan")
    _LOG.info("trained %s to step %d in %.1f s, loss %.4f", mcfg.name, config.steps, wall, final)
    return TrainResult(checkpoint, config.steps, final, wall, start, metrics_path)
