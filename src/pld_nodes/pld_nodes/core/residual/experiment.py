"""The stage-1 experiment: PLD residual vs SAC from scratch vs the base alone, same budget/seeds.

``run_comparison`` trains the residual on the frozen base (probe, Cal-QL, warm-up, online),
then SAC from scratch with the same total number of environment steps and the same training
and evaluation seeds, evaluates the base alone on the same final seeds, and writes
``report.md`` + ``learning_curves.png`` + ``comparison.json`` into the output directory. Each
arm lives in its own sub-directory and resumes like a single training run.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pld_nodes.core.residual.rollout import ChunkedBase, StateSpec
from pld_nodes.core.residual.trainer import (
    NO_BASE,
    VALIDATION_SEED_OFFSET,
    ResidualTrainer,
    TrainConfig,
    TrainResult,
    evaluate,
    load_base_policy,
    make_task_env,
)

_LOG = logging.getLogger(__name__)
SUCCESS_THRESHOLD = 0.95


@dataclass
class ArmSummary:
    name: str
    final_success: float
    final_episodes: int
    env_steps: int
    steps_to_threshold: int | None
    """Env steps at the first periodic evaluation >= SUCCESS_THRESHOLD (None: never)."""
    wall_s: float
    curve: list[tuple[int, float]]


def _summary(name: str, result: TrainResult) -> ArmSummary:
    reached = [p.env_steps for p in result.curve if p.success_rate >= SUCCESS_THRESHOLD]
    return ArmSummary(
        name=name,
        final_success=result.final_success,
        final_episodes=len(result.final_successes),
        env_steps=result.env_steps,
        steps_to_threshold=reached[0] if reached else None,
        # a resumed run's own wall time is only the resumed part; the curve keeps training time
        wall_s=max(result.wall_s, result.curve[-1].wall_s if result.curve else 0.0),
        curve=[(p.env_steps, p.success_rate) for p in result.curve],
    )


def _base_alone(cfg: TrainConfig) -> ArmSummary:
    t0 = time.perf_counter()
    env = make_task_env(cfg)
    try:
        base = ChunkedBase(load_base_policy(cfg), cfg.execute_steps)
        seeds = [cfg.eval_seed + i for i in range(cfg.final_eval_episodes)]
        spec = StateSpec(cfg.policy.use_proprio, cfg.policy.use_object_state)
        successes = evaluate(env, base, None, seeds=seeds, xi=0.0, state_spec=spec)
    finally:
        env.close()
    rate = float(np.mean(successes))
    return ArmSummary("base alone", rate, len(successes), 0, None, time.perf_counter() - t0, [])


def run_comparison(
    cfg: TrainConfig, out_dir: str | Path, *, progress: bool = True, scratch: bool = True
) -> dict[str, ArmSummary]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arms: dict[str, ArmSummary] = {}
    _LOG.info("arm 1/3: base alone (%d episodes)", cfg.final_eval_episodes)
    arms["base"] = _base_alone(cfg)
    _LOG.info("arm 2/3: PLD residual on the frozen base")
    pld = ResidualTrainer(cfg, out / "pld_residual", progress=progress)
    try:
        arms["pld"] = _summary("PLD residual (SAC + RLPD + Cal-QL)", pld.run())
    finally:
        pld.close()
    if scratch:
        _LOG.info("arm 3/3: SAC from scratch, same env-step budget (%d)", arms["pld"].env_steps)
        scratch_cfg = replace(
            cfg,
            base_checkpoint=NO_BASE,
            online_env_steps=10**9,
            env_step_budget=arms["pld"].env_steps,
            stop_at_success=1.01,
        )
        sac = ResidualTrainer(scratch_cfg, out / "sac_scratch", progress=progress)
        try:
            arms["scratch"] = _summary("SAC from scratch (no base)", sac.run())
        finally:
            sac.close()
    write_report(cfg, arms, out)
    return arms


def write_report(cfg: TrainConfig, arms: dict[str, ArmSummary], out: Path) -> Path:
    (out / "comparison.json").write_text(
        json.dumps(
            {"config": cfg.to_dict(), "arms": {k: asdict(v) for k, v in arms.items()}}, indent=2
        )
        + "\n"
    )
    _plot(arms, out / "learning_curves.png")
    lines = [
        f"# PLD stage 1 on `{cfg.task}`: residual RL vs SAC from scratch vs the base",
        "",
        f"Base policy `{cfg.base_checkpoint}` (frozen), xi = {cfg.policy.xi}, "
        f"{cfg.offline_episodes} successful base rollouts for the offline buffer, "
        f"{cfg.sac.calql_steps} Cal-QL steps, {cfg.warmup_episodes} warm-up episodes, "
        f"batch {cfg.sac.batch_size}, UTD {cfg.sac.updates_per_step}, "
        f"critic:actor {cfg.sac.critic_actor_ratio}. Final (test) evaluation: deterministic "
        f"residual{' of the best validated actor' if cfg.select_best else ''}, env seeds "
        f"{cfg.eval_seed}–{cfg.eval_seed + cfg.final_eval_episodes - 1} for every arm; the "
        f"learning curves are validation evaluations ({cfg.eval_episodes} episodes each, seeds "
        f"from {cfg.eval_seed + VALIDATION_SEED_OFFSET}, disjoint from the test seeds).",
        "",
        "| arm | final success | env steps used | env steps to first eval >= "
        f"{SUCCESS_THRESHOLD:.0%} (validation) | wall time (2-core CPU) |",
        "|---|---|---|---|---|",
    ]
    for arm in arms.values():
        hits = round(arm.final_success * arm.final_episodes)
        to_thr = "—" if arm.steps_to_threshold is None else f"{arm.steps_to_threshold:,}"
        steps = "—" if arm.env_steps == 0 else f"{arm.env_steps:,}"
        lines.append(
            f"| {arm.name} | {arm.final_success:.0%} ({hits}/{arm.final_episodes}) | {steps} | "
            f"{to_thr} | {arm.wall_s / 60:.1f} min |"
        )
    lines += [
        "",
        "![learning curves](learning_curves.png)",
        "",
        "Env steps count every simulated step the arm took (probe and warm-up included). "
        "Per-arm details: "
        "`pld_residual/` and `sac_scratch/` (config.json, metrics.jsonl, TensorBoard logs, "
        "checkpoints, the episode store, residual_actor.safetensors).",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _plot(arms: dict[str, ArmSummary], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for key, colour in (("pld", "tab:blue"), ("scratch", "tab:orange")):
        arm = arms.get(key)
        if arm and arm.curve:
            x, y = zip(*arm.curve, strict=True)
            ax.plot(x, y, marker="o", color=colour, label=arm.name)
    if "base" in arms:
        ax.axhline(arms["base"].final_success, color="tab:gray", ls="--", label="base alone")
    ax.axhline(SUCCESS_THRESHOLD, color="tab:green", ls=":", lw=1, label=f"{SUCCESS_THRESHOLD:.0%}")
    ax.set_xlabel("environment steps (incl. probe and warm-up)")
    ax.set_ylabel("success rate (validation episodes)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def quick_config(**overrides: Any) -> TrainConfig:
    """The CI-sized version: every stage runs, budgets are tiny."""
    from pld_nodes.core.residual.config import SACConfig

    base = TrainConfig(
        offline_episodes=3,
        warmup_episodes=1,
        online_env_steps=400,
        eval_every_steps=200,
        eval_episodes=2,
        final_eval_episodes=3,
        sac=SACConfig(batch_size=64, calql_steps=20, calql_actions=2),
    )
    return replace(base, **overrides)
