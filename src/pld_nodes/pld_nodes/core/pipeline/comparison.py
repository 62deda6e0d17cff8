"""The paper's data-source comparison, in sim: distil the same base from equal numbers of

(a) PLD hybrid rollouts (α > 0: base probes, then the specialist takes over),
(b) residual-from-step-0 rollouts (α = 0),
(c) scripted-expert demonstrations,
(d) the base policy's own successful rollouts (0/1-filtered self-imitation),

with the same SFT schedule, and evaluate each distilled policy on the same seeded episodes.
The paper (Xiao et al. 2025) finds (a) > (b), (c), (d) in distribution. Runs in-process on the
artefacts of a finished ``pld-run`` directory (its specialist; its collected store for (a)).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pld_nodes.core.episode_data import load_distillation_episodes
from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.pipeline.collect import CollectRequest, collect_inprocess, collect_status
from pld_nodes.core.pipeline.config import PipelineConfig
from pld_nodes.core.pipeline.evaluate import ArmResult, evaluate_arm
from pld_nodes.core.pipeline.run import task_max_steps
from pld_nodes.core.vla.distill import distill

_LOG = logging.getLogger(__name__)
SOURCES = {
    "pld_hybrid": "(a) PLD hybrid rollouts",
    "residual_only": "(b) residual from step 0 (α = 0)",
    "expert_demos": "(c) scripted-expert demos",
    "base_rollouts": "(d) base policy's own successes",
}
SEEDS = {
    "pld_hybrid": 20_000,
    "residual_only": 30_000,
    "expert_demos": 40_000,
    "base_rollouts": 60_000,
}
"""Env seeds per source, disjoint from each other and from training/validation/evaluation."""


@dataclass(frozen=True)
class CompareConfig:
    episodes: int = 100
    """Successful episodes per source (equal-size distillation sets)."""
    eval_episodes: int = 100
    eval_seed: int = 1000
    max_attempts_factor: int = 4
    """Give up on a source after ``factor * episodes`` attempts (the base succeeds ~50 %)."""


def _collect_source(
    source: str, run: Path, cfg: PipelineConfig, c: CompareConfig, out: Path
) -> list[dict[str, Any]]:
    learn = cfg.learn
    if source == "expert_demos":
        from pld_nodes.core.vla.demos import collect_expert_demos

        return collect_expert_demos(
            learn.task,
            c.episodes,
            seed=SEEDS[source],
            max_attempts=c.max_attempts_factor * c.episodes,
        )
    store = run / "collect" / "episodes.zarr"  # (a) reuses the run's own collection if big enough
    if source != "pld_hybrid" or collect_status(store).successes < c.episodes:
        store = out / f"{source}.zarr"
        request = CollectRequest(
            task=learn.task,
            base_checkpoint=learn.base_checkpoint,
            residual_weights=run / "learn" / "residual_actor.safetensors",
            store=store,
            successes=c.episodes,
            episode_limit=c.max_attempts_factor * c.episodes,
            alpha={"pld_hybrid": cfg.collect.alpha, "residual_only": 0.0, "base_rollouts": 1.0}[
                source
            ],
            t_max=learn.max_steps or task_max_steps(learn.task),
            seed=SEEDS[source],
            execute_steps=learn.execute_steps,
            mode="base" if source == "base_rollouts" else "hybrid",
        )
        bar = tqdm(total=c.episodes, desc=f"collect {source}", leave=False)
        collect_inprocess(request, lambda _e, s: bar.update(min(s, c.episodes) - bar.n))
        bar.close()
    modes = ("base",) if source == "base_rollouts" else ("hybrid",)
    return load_distillation_episodes(EpisodeStore.open(store), modes=modes)[: c.episodes]


def run_comparison(
    run: str | Path, out: str | Path, c: CompareConfig, progress: bool = True
) -> Path:
    """Collect, distil and evaluate every source; resumable (per-source files in ``out``)."""
    from pld_nodes.core.pipeline.config import pipeline_config_from_mapping

    run, out = Path(run), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = pipeline_config_from_mapping(
        json.loads((run / "config.json").read_text()), PipelineConfig()
    )
    seeds = [c.eval_seed + i for i in range(c.eval_episodes)]
    results: dict[str, dict[str, Any]] = {}
    for source in SOURCES:
        path = out / f"{source}.json"
        if path.exists():
            results[source] = json.loads(path.read_text())
            continue
        episodes = _collect_source(source, run, cfg, c, out)
        if not episodes:
            raise RuntimeError(f"source {source}: no successful episode to distil from")
        trained = distill(cfg.distill, episodes, out / f"distill_{source}", progress=progress)
        bar = tqdm(total=len(seeds), desc=f"evaluate {source}", disable=not progress, leave=False)
        arm = evaluate_arm(
            SOURCES[source], cfg.task, str(trained.checkpoint), seeds,
            execute_steps=cfg.learn.execute_steps, progress=lambda b=bar: b.update(1),
        )  # fmt: skip
        bar.close()
        results[source] = {
            "episodes": len(episodes),
            "steps": int(sum(len(e["actions"]) for e in episodes)),
            **asdict(arm),
        }
        path.write_text(json.dumps(results[source]) + "\n")
        _LOG.info("%s: distilled success %.1f %%", source, 100 * arm.rate)
    base = run / "evaluate" / "base.json"
    return write_comparison_report(
        cfg, c, results, ArmResult.load(base) if base.exists() else None, out
    )


def write_comparison_report(
    cfg: PipelineConfig,
    c: CompareConfig,
    results: dict[str, dict[str, Any]],
    base: ArmResult | None,
    out: Path,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = {
        s: ArmResult(**{k: r[k] for k in ("name", "successes", "lengths", "seeds", "wall_s")})
        for s, r in results.items()
    }
    rows = []
    for s, arm in arms.items():
        lo, hi = arm.interval()
        rows.append(
            f"| {arm.name} | {results[s]['episodes']} ({results[s]['steps']} steps) | "
            f"**{100 * arm.rate:.1f} %** | {100 * lo:.1f}–{100 * hi:.1f} % |"
        )
    if base is not None and base.seeds == next(iter(arms.values())).seeds:
        lo, hi = base.interval()
        rows.append(
            f"| original base (no distillation) | — | {100 * base.rate:.1f} % "
            f"| {100 * lo:.1f}–{100 * hi:.1f} % |"
        )
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = [s.replace("_", "\n") for s in arms]
    rates = [100 * a.rate for a in arms.values()]
    err = [
        [100 * (a.rate - a.interval()[0]) for a in arms.values()],
        [100 * (a.interval()[1] - a.rate) for a in arms.values()],
    ]
    ax.bar(
        names,
        rates,
        yerr=err,
        capsize=5,
        color=["tab:green", "tab:olive", "tab:blue", "tab:gray"][: len(arms)],
    )
    if base is not None:
        ax.axhline(100 * base.rate, color="black", ls="--", lw=1, label="original base")
        ax.legend(loc="lower right")
    ax.set_ylabel(f"distilled success (%), {c.eval_episodes} episodes")
    ax.set_ylim(0, 105)
    ax.set_title(f"Distillation data sources, {c.episodes} successful episodes each")
    fig.tight_layout()
    fig.savefig(out / "sources.png", dpi=110)
    plt.close(fig)
    d = cfg.distill
    (out / "report.md").write_text(f"""# Distillation data sources — {cfg.task}

Base `{cfg.learn.base_checkpoint}` fine-tuned with the same SFT schedule ({d.steps} steps, batch
{d.batch_size}, lr {d.lr}) on {c.episodes} successful episodes from each source; each distilled
policy evaluated on seeds {c.eval_seed}–{c.eval_seed + c.eval_episodes - 1}.

| data source | episodes | distilled success | 95 % CI |
|---|---|---|---|
{chr(10).join(rows)}

![sources](sources.png)
""")
    return out / "report.md"
