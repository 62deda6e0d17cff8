"""Stage 4, Evaluate: each policy on the same seeded episodes, closed loop, deterministic."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pld_nodes.core.residual.checkpoint import actor_from_bytes
from pld_nodes.core.residual.rollout import (
    ChunkedBase,
    StateSpec,
    deterministic_residual,
    run_episode,
)
from pld_nodes.core.residual.trainer import TrainConfig, load_base_policy, make_task_env


@dataclass(frozen=True)
class ArmResult:
    """One policy's outcome on the evaluation seeds."""

    name: str
    successes: list[bool]
    lengths: list[int]
    seeds: list[int]
    wall_s: float

    @property
    def rate(self) -> float:
        return sum(self.successes) / len(self.successes)

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """Wilson score interval for the success rate (95 % by default)."""
        return wilson_interval(sum(self.successes), len(self.successes), z)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ArmResult:
        return cls(**json.loads(path.read_text()))


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # the interval contains p exactly; min/max only absorb float rounding at k = 0 or n
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def evaluate_arm(
    name: str,
    task: str,
    policy_checkpoint: str,
    seeds: list[int],
    *,
    execute_steps: int,
    residual_weights: Path | None = None,
    progress=None,
) -> ArmResult:
    """``policy_checkpoint`` alone, or with the residual from step 0 when weights are given."""
    t0 = time.perf_counter()
    cfg = TrainConfig(task=task, base_checkpoint=policy_checkpoint, execute_steps=execute_steps)
    residual, xi, spec = None, 0.0, StateSpec()
    if residual_weights is not None:
        loaded = actor_from_bytes(Path(residual_weights).read_bytes())
        residual, xi = deterministic_residual(loaded.actor), loaded.xi
        spec = StateSpec(loaded.actor.config.use_proprio, loaded.actor.config.use_object_state)
    env = make_task_env(cfg)
    successes, lengths = [], []
    try:
        base = ChunkedBase(load_base_policy(cfg), execute_steps)
        for seed in seeds:
            _, attrs = run_episode(env, base, residual, seed=seed, xi=xi, state_spec=spec)
            successes.append(bool(attrs["success"]))
            lengths.append(int(attrs["length"]))
            if progress is not None:
                progress()
    finally:
        env.close()
    return ArmResult(name, successes, lengths, list(seeds), time.perf_counter() - t0)
