"""The pipeline's report: markdown summary, success table with 95 % intervals, plots, timing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pld_nodes.core.pipeline.config import PipelineConfig
from pld_nodes.core.pipeline.evaluate import ArmResult

ARM_ORDER = ("base", "specialist", "distilled")


def _arms(out: Path) -> dict[str, ArmResult]:
    found = {a: out / "evaluate" / f"{a}.json" for a in ARM_ORDER}
    return {a: ArmResult.load(p) for a, p in found.items() if p.exists()}


def _plot_success(arms: dict[str, ArmResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [arms[a].name for a in arms]
    rates = [100 * arms[a].rate for a in arms]
    lows = [100 * (arms[a].rate - arms[a].interval()[0]) for a in arms]
    highs = [100 * (arms[a].interval()[1] - arms[a].rate) for a in arms]
    colors = ["tab:gray", "tab:orange", "tab:green"][: len(arms)]
    ax.bar(names, rates, yerr=[lows, highs], capsize=6, color=colors)
    for i, r in enumerate(rates):
        ax.text(i, r / 2, f"{r:.0f}%", ha="center", color="white", fontweight="bold")
    n = len(next(iter(arms.values())).successes)
    ax.set_ylim(0, 110)
    ax.set_ylabel(f"success (%), {n} episodes, 95% CI")
    ax.set_title("Same seeded episodes for every policy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_learning(curve: list[list[float]], base: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    if curve:
        steps, rates = zip(*curve, strict=True)
        ax.plot(steps, [100 * r for r in rates], "o-", label="residual specialist (validation)")
    if base is not None:
        ax.axhline(100 * base, color="tab:gray", ls="--", label="base alone (probe episodes)")
    ax.set_xlabel("env steps (probe + warm-up + online RL)")
    ax.set_ylabel("success (%)")
    ax.set_ylim(-5, 105)
    ax.set_title("Stage 1: residual RL")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_distill(metrics: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=0.8)
    ax.set_xlabel("SFT step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title("Stage 3: distillation (the VLA's own SFT loss)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(x: Any, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def write_report(cfg: PipelineConfig, out: Path, state: dict[str, Any]) -> Path:
    """Write ``report.md`` (+ PNGs, ``results.json``) from the stage artefacts in ``out``."""
    arms = _arms(out)
    learn = state["learn"].artefacts or {}
    collect = state["collect"].artefacts or {}
    distill = state["distill"].artefacts or {}
    plots = []
    if arms:
        _plot_success(arms, out / "success.png")
        plots.append("![success](success.png)")
    if learn:
        probe = learn.get("base_probe_success")
        _plot_learning(learn.get("curve", []), probe, out / "learning_curve.png")
        plots.append("![learning curve](learning_curve.png)")
    if distill and (out / distill["metrics"]).exists():
        _plot_distill(out / distill["metrics"], out / "distill_loss.png")
        plots.append("![distillation loss](distill_loss.png)")
    e = cfg.evaluate
    rows = []
    for r in arms.values():
        lo, hi = r.interval()
        rows.append(
            f"| {r.name} | **{100 * r.rate:.1f} %** ({sum(r.successes)}/{len(r.successes)}) "
            f"| {100 * lo:.1f}–{100 * hi:.1f} % |"
        )
    timing = "\n".join(
        f"| {name} | {rec.status} | {rec.wall_s / 60:.1f} min |" for name, rec in state.items()
    )
    total = sum(rec.wall_s for rec in state.values())
    verdict = ""
    if "base" in arms and "distilled" in arms:
        gain = 100 * (arms["distilled"].rate - arms["base"].rate)
        verdict = (
            f"\n**The distilled VLA {'beats' if gain > 0 else 'does not beat'} the original base "
            f"({gain:+.1f} points)** on the same {e.episodes} seeded episodes.\n"
        )
    c = cfg.collect
    stage_rows = "\n".join([
        f"| 1. Probe/Learn | residual specialist after {_fmt(learn.get('env_steps'), 'd')} env "
        f"steps; base success while probing {_fmt(learn.get('base_probe_success'))}; "
        f"specialist on the stage-1 test seeds {_fmt(learn.get('specialist_test_success'))} |",
        f"| 2. Collect ({collect.get('backend', c.backend)}) | "
        f"{_fmt(collect.get('successes'), 'd')} successful of "
        f"{_fmt(collect.get('episodes'), 'd')} hybrid episodes (α = {c.alpha}), "
        f"{_fmt(collect.get('steps'), 'd')} steps |",
        f"| 3. Distill | {_fmt(distill.get('steps'), 'd')} SFT steps on "
        f"{_fmt(distill.get('episodes'), 'd')} episodes (+{_fmt(distill.get('demos'), 'd')} "
        f"demos at {cfg.distill.demo_fraction:.0%}), final loss "
        f"{_fmt(distill.get('final_loss'), '.4f')} |",
    ])  # fmt: skip
    results = {a: {"rate": r.rate, "episodes": len(r.successes)} for a, r in arms.items()}
    (out / "results.json").write_text(json.dumps(
        {"arms": results, "learn": learn, "collect": collect, "distill": distill}, indent=2
    ) + "\n")  # fmt: skip
    text = f"""# PLD pipeline report — {cfg.task}

Base policy `{cfg.learn.base_checkpoint}`; evaluation seeds {e.seed}–{e.seed + e.episodes - 1}
(every policy gets the same episodes, deterministic actions).
{verdict}
| policy | success | 95 % CI (Wilson) |
|---|---|---|
{chr(10).join(rows)}

## Stages

| stage | what it produced |
|---|---|
{stage_rows}
| 4. Evaluate | {len(arms)} policies × {e.episodes} episodes |

| stage | status | wall time |
|---|---|---|
{timing}
| total | | {total / 60:.1f} min |

{chr(10).join(plots)}

Config: `config.json`; per-episode results: `evaluate/*.json`; stage state: `state.json`.
"""
    (out / "report.md").write_text(text)
    return out / "report.md"
