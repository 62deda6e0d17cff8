"""PLD stage 3: fine-tune the base VLA on its own improved rollouts with its usual SFT loss.

The episodes are PLD's successful hybrid rollouts (the executed action is the label, the
base-only prefix included, see ``core.episode_data.load_distillation_episodes``), optionally
mixed with the demonstrations the base was first trained on at a fixed share of every batch
(guards against forgetting). Training starts from the base checkpoint's weights and keeps its
input normalisation, so the distilled policy is a drop-in replacement for the base.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pld_nodes.core.policy.backends import SHIPPED_PREFIX, resolve_checkpoint
from pld_nodes.core.vla.checkpoint import read_config
from pld_nodes.core.vla.dataset import EpisodeDataset
from pld_nodes.core.vla.text import HashTokenizer
from pld_nodes.core.vla.train import TrainConfig, TrainResult, train_sft

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillConfig:
    """One distillation run.

    Attributes:
        base_checkpoint: the VLA to improve (path or ``shipped:<name>``); the result has its
            architecture, tokenizer and normalisation.
        steps, batch_size, lr, warmup_steps: the SFT schedule (cosine decay after warm-up).
            Fine-tuning uses a lower lr than the base's training (3e-4 vs 1e-3).
        demo_fraction: share of every batch drawn from the original demos (0 = PLD data only).
        seed: batch sampling and flow noise.
        checkpoint_every: steps between resumable checkpoints.
        device: ``cpu`` or ``cuda`` (under torchrun each rank takes its own GPU).
    """

    base_checkpoint: str = "shipped:lift_flow"
    steps: int = 1500
    batch_size: int = 128
    lr: float = 3e-4
    warmup_steps: int = 50
    demo_fraction: float = 0.0
    seed: int = 0
    checkpoint_every: int = 250
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not 0.0 <= self.demo_fraction < 1.0 or not math.isfinite(self.demo_fraction):
            raise ValueError(f"demo_fraction must be in [0, 1), got {self.demo_fraction!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(
                f"steps ({self.steps}) and batch_size ({self.batch_size}) must be >= 1"
            )

    def train_config(self, progress: bool = True) -> TrainConfig:
        model, _ = read_config(resolve_checkpoint(self.base_checkpoint))
        return TrainConfig(
            model=model,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup_steps=self.warmup_steps,
            checkpoint_every=min(self.checkpoint_every, self.steps),
            seed=self.seed,
            progress=progress,
            device=self.device,
            init_checkpoint=resolve_checkpoint(self.base_checkpoint),
        )


def original_demos(base_checkpoint: str) -> list[dict[str, Any]]:
    """The demonstrations a shipped base was trained on, regenerated from its recipe (the
    scripted expert is deterministic given the recipe's seeds). Other bases: pass their demos."""
    from pld_nodes.core.vla.demos import collect_expert_demos
    from pld_nodes.core.vla.recipes import IMPERFECT_BASE_RECIPES

    name = base_checkpoint.removeprefix(SHIPPED_PREFIX)
    if not base_checkpoint.startswith(SHIPPED_PREFIX) or name not in IMPERFECT_BASE_RECIPES:
        raise KeyError(
            f"no recipe for {base_checkpoint!r}: only shipped bases "
            f"({sorted(IMPERFECT_BASE_RECIPES)}) can regenerate their demos; give a demo store"
        )
    r = IMPERFECT_BASE_RECIPES[name]
    return collect_expert_demos(
        r.task, r.demo_episodes, noise_std=r.demo_noise_std, seed=r.demo_seed
    )


def build_distill_dataset(
    cfg: DistillConfig,
    episodes: Sequence[Mapping[str, Any]],
    demos: Sequence[Mapping[str, Any]] = (),
) -> EpisodeDataset:
    """PLD episodes (+ demos at ``demo_fraction`` of every batch) as one weighted dataset."""
    if not episodes:
        raise ValueError("no episodes to distil (no successful hybrid rollout in the store?)")
    if cfg.demo_fraction > 0 and not demos:
        raise ValueError(f"demo_fraction={cfg.demo_fraction} but no demos were given")
    model, _ = read_config(resolve_checkpoint(cfg.base_checkpoint))
    demos = list(demos) if cfg.demo_fraction > 0 else []
    weights = [(1.0 - cfg.demo_fraction) / len(episodes)] * len(episodes)
    weights += [cfg.demo_fraction / max(1, len(demos))] * len(demos)
    return EpisodeDataset(
        [*episodes, *demos],
        model.horizon,
        seed=cfg.seed,
        image_keys=model.image_keys,
        use_object_state=model.use_object_state,
        tokenizer=HashTokenizer(model.text),
        episode_weights=weights,
    )


def distill(
    cfg: DistillConfig,
    episodes: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    demos: Sequence[Mapping[str, Any]] = (),
    *,
    progress: bool = True,
    resume: bool = True,
) -> TrainResult:
    """Fine-tune the base on ``episodes`` (+ ``demos``); resumable from ``out_dir``."""
    dataset = build_distill_dataset(cfg, episodes, demos)
    _LOG.info(
        "distilling %s on %d episodes (%d samples)%s",
        cfg.base_checkpoint,
        len(episodes),
        len(dataset),
        f" + {len(demos)} demos at {cfg.demo_fraction:.0%}" if cfg.demo_fraction > 0 else "",
    )
    return train_sft(cfg.train_config(progress), dataset, out_dir, resume=resume)
