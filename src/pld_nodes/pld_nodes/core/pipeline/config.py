"""Configuration of the PLD pipeline: one frozen dataclass per stage, one for the whole run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from typing import Any

from pld_nodes.core.config import ConfigError, from_mapping, require_finite
from pld_nodes.core.residual.trainer import TrainConfig, train_config_from_mapping
from pld_nodes.core.vla.distill import DistillConfig

COLLECT_BACKENDS = ("ros", "inprocess")


@dataclass(frozen=True)
class CollectConfig:
    """Stage 2: hybrid rollouts with the stage-1 specialist.

    Attributes:
        successes: successful episodes to collect (the distillation set's size).
        alpha: T_base ~ U{0..floor(alpha * T_max)} base-only steps before the residual takes
            over (paper: 0.6); 0 = residual from step 0.
        max_episodes: give up after this many episodes (0 = 3 x ``successes``).
        seed: episode k is reset with env seed ``seed + k`` and draws its T_base from
            ``(seed, k)``; disjoint from training (100000+), validation (51000+) and
            evaluation (1000+) seeds.
        backend: ``ros`` = the sim_pld graph (vla, residual, arbiter, episode manager, recorder
            nodes) records the episodes; ``inprocess`` = the same core code in this process.
        batch_episodes: ROS backend: episodes per graph launch (the graph is relaunched, with
            new seeds, until enough successes are in the store).
    """

    successes: int = 100
    alpha: float = 0.6
    max_episodes: int = 0
    seed: int = 20_000
    backend: str = "ros"
    batch_episodes: int = 60

    def __post_init__(self) -> None:
        if self.successes < 1 or self.max_episodes < 0 or self.batch_episodes < 1:
            raise ConfigError(
                f"successes ({self.successes}) and batch_episodes ({self.batch_episodes}) must "
                f"be >= 1, max_episodes ({self.max_episodes}) >= 0"
            )
        require_finite("alpha", self.alpha, low=0.0, high=1.0)
        if self.backend not in COLLECT_BACKENDS:
            raise ConfigError(f"backend must be one of {COLLECT_BACKENDS}, got {self.backend!r}")

    @property
    def episode_limit(self) -> int:
        return self.max_episodes or 3 * self.successes


@dataclass(frozen=True)
class EvalConfig:
    """Stage 4: base vs residual specialist vs distilled base on the same seeded episodes."""

    episodes: int = 100
    seed: int = 1000

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"episodes must be >= 1, got {self.episodes}")


@dataclass(frozen=True)
class PipelineConfig:
    """The whole run. ``learn`` is the stage-1 trainer's config (task and base live there)."""

    learn: TrainConfig = field(default_factory=TrainConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    demo_source: str = "recipe"
    """Original demos for ``distill.demo_fraction > 0``: ``recipe`` (regenerate a shipped base's
    demos) or a path to an episode store of demos."""

    def __post_init__(self) -> None:
        if self.distill.base_checkpoint != self.learn.base_checkpoint:
            raise ConfigError(
                f"distill.base_checkpoint ({self.distill.base_checkpoint!r}) must be the base the "
                f"residual was trained on (learn.base_checkpoint {self.learn.base_checkpoint!r})"
            )
        if not self.learn.has_base:
            raise ConfigError("the pipeline needs a base policy (learn.base_checkpoint != none)")

    @property
    def task(self) -> str:
        return self.learn.task

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def quick_pipeline_config(**overrides: Any) -> PipelineConfig:
    """CI-sized budgets: every stage runs and hands off; the numbers mean nothing."""
    from pld_nodes.core.residual.experiment import quick_config

    learn = quick_config(online_env_steps=300, eval_every_steps=150, final_eval_episodes=2)
    cfg = PipelineConfig(
        learn=learn,
        collect=CollectConfig(successes=2, max_episodes=6, batch_episodes=3),
        distill=DistillConfig(steps=20, batch_size=32, checkpoint_every=10, warmup_steps=2),
        evaluate=EvalConfig(episodes=3),
    )
    return replace(cfg, **overrides)


def pipeline_config_from_mapping(values: dict[str, Any], base: PipelineConfig) -> PipelineConfig:
    """``base`` with the sections in ``values`` (YAML/JSON-shaped) overriding its fields."""
    values = dict(values)
    learn = base.learn
    if "learn" in values:
        given = dict(values.pop("learn"))  # never mutate the caller's mapping
        current = dataclasses.asdict(base.learn)
        for key in ("policy", "sac"):
            current[key] = current[key] | (given.pop(key, None) or {})
        learn = train_config_from_mapping(current | given)
    sections = {"collect": CollectConfig, "distill": DistillConfig, "evaluate": EvalConfig}
    built: dict[str, Any] = {"learn": learn}
    for key, cls in sections.items():
        current = dataclasses.asdict(getattr(base, key))
        built[key] = from_mapping(cls, current | (values.pop(key, None) or {}))
    return from_mapping(PipelineConfig, {"demo_source": base.demo_source} | values | built)
