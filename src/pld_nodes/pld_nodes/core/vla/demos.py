"""Demonstrations from the scripted sim experts and closed-loop evaluation of chunked policies.

State only (no rendering) so that collecting data and evaluating a base policy take seconds.
``sim_bridge`` is imported lazily: the rest of the VLA package does not need the simulator.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from pld_nodes.core.policy.interface import Policy, PolicyObservation

_LOG = logging.getLogger(__name__)


def _make_env(task: str, seed: int, max_steps: int | None) -> Any:
    from sim_bridge.envs import make_env

    return make_env(task, render=False, privileged_state=True, seed=seed, max_steps=max_steps)


def collect_expert_demos(
    task: str = "lift",
    episodes: int = 20,
    *,
    noise_std: float = 0.0,
    perturb_m: float = 0.0,
    seed: int = 0,
    max_attempts: int | None = None,
    max_steps: int | None = None,
) -> list[dict[str, Any]]:
    """Roll out the scripted expert and keep the successful episodes.

    Episode ``i`` resets the env with seed ``seed + i``; the expert's own noise stream is seeded
    with ``seed``. Recorded actions include the expert's noise (what was executed). Returns
    dicts in the ``EpisodeDataset`` format: proprio, actions, object_state, instruction, plus
    ``task`` and ``seed``. Logs a warning if fewer than ``episodes`` succeed within
    ``max_attempts`` (default ``3 * episodes``).
    """
    from sim_bridge.envs.experts import make_expert

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes!r}")
    attempts = max_attempts if max_attempts is not None else 3 * episodes
    env = _make_env(task, seed, max_steps)
    expert = make_expert(
        task, noise_std=noise_std, perturb_m=perturb_m, seed=seed, object_names=env.object_names
    )
    kept: list[dict[str, Any]] = []
    try:
        for i in range(attempts):
            if len(kept) == episodes:
                break
            obs, info = env.reset(seed=seed + i)
            expert.reset(obs, info)
            proprio, objects, actions = [], [], []
            while True:
                action = expert.act(obs)
                proprio.append(obs["proprio"])
                objects.append(obs["object_state"])
                actions.append(action)
                obs, _, terminated, truncated, info = env.step(action)
                if terminated or truncated:
                    break
            if info["success"]:
                kept.append(
                    {
                        "proprio": np.asarray(proprio, np.float32),
                        "actions": np.clip(np.asarray(actions, np.float32), -1.0, 1.0),
                        "object_state": np.asarray(objects, np.float32),
                        "instruction": env.instruction,
                        "task": task,
                        "seed": seed + i,
                    }
                )
    finally:
        env.close()
    if len(kept) < episodes:
        _LOG.warning("only %d/%d successful demos in %d attempts", len(kept), episodes, attempts)
    return kept


@dataclass(frozen=True)
class EvalResult:
    """Closed-loop outcome over seeded episodes."""

    success_rate: float
    successes: tuple[bool, ...]
    lengths: tuple[int, ...]
    inferences: int
    mean_infer_ms: float
    wall_time_s: float


def evaluate_policy(
    policy: Policy,
    task: str = "lift",
    *,
    episodes: int = 30,
    seed: int = 1000,
    execute_k: int = 4,
    max_steps: int | None = None,
) -> EvalResult:
    """Run ``policy`` closed-loop: execute the first ``execute_k`` actions of each chunk, then
    re-infer. Episode ``i`` uses env seed ``seed + i`` (keep it disjoint from the demo seeds)
    and, if the policy has ``reset(seed)``, restarts its noise stream with the same seed."""
    if not 1 <= execute_k <= policy.spec.chunk_horizon:
        raise ValueError(
            f"execute_k must be in [1, {policy.spec.chunk_horizon}], got {execute_k!r}"
        )
    env = _make_env(task, seed, max_steps)
    successes, lengths, infer_s, calls = [], [], 0.0, 0
    t0 = time.perf_counter()
    try:
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            if hasattr(policy, "reset"):
                policy.reset(seed + i)
            done, steps = False, 0
            while not done:
                start = time.perf_counter()
                chunk = policy.infer(
                    PolicyObservation(
                        proprio=obs["proprio"],
                        instruction=env.instruction,
                        object_state=obs.get("object_state"),
                    )
                )
                infer_s += time.perf_counter() - start
                calls += 1
                for action in chunk[:execute_k]:
                    obs, _, terminated, truncated, info = env.step(action)
                    steps += 1
                    if terminated or truncated:
                        done = True
                        break
            successes.append(bool(info["success"]))
            lengths.append(steps)
    finally:
        env.close()
    result = EvalResult(
        success_rate=float(np.mean(successes)),
        successes=tuple(successes),
        lengths=tuple(lengths),
        inferences=calls,
        mean_infer_ms=1e3 * infer_s / max(calls, 1),
        wall_time_s=time.perf_counter() - t0,
    )
    _LOG.info("%s: success %.2f over %d episodes", task, result.success_rate, episodes)
    return result
