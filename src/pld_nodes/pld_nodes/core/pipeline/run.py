"""The PLD pipeline: Probe/Learn → Collect → Distill → Evaluate → report, resumable.

Layout of ``out``::

    config.json            the PipelineConfig (a re-run must use the same one)
    state.json             per-stage status, wall time and hand-off artefacts
    learn/                 stage-1 trainer dir (episodes.zarr, checkpoints, residual_actor...)
    collect/episodes.zarr  hybrid rollouts with the specialist
    distill/               SFT checkpoints + metrics.jsonl
    evaluate/<arm>.json    per-policy results on the evaluation seeds
    report.md + *.png      what a person reads

Each stage is skipped when ``state.json`` says it is done; an interrupted stage resumes from its
own files (trainer checkpoints + store, the collection store, SFT checkpoints, per-arm results).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pld_nodes.core.config import ConfigError
from pld_nodes.core.pipeline.collect import (
    Collector,
    CollectRequest,
    collect_inprocess,
    collect_status,
)
from pld_nodes.core.pipeline.config import PipelineConfig
from pld_nodes.core.pipeline.evaluate import ArmResult, evaluate_arm

_LOG = logging.getLogger(__name__)
STAGES = ("learn", "collect", "distill", "evaluate")
ARMS = ("base", "specialist", "distilled")
ARM_NAMES = {
    "base": "base VLA (frozen)",
    "specialist": "base + residual specialist",
    "distilled": "distilled VLA",
}


def task_max_steps(task: str) -> int:
    from sim_bridge.envs.tasks import get_task_spec

    return int(get_task_spec(task).default_max_steps)


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            out |= _flatten(v, f"{prefix}{k}.")
        return out
    return {prefix[:-1]: doc}


@dataclass
class StageRecord:
    status: str = "pending"
    wall_s: float = 0.0
    artefacts: dict[str, Any] | None = None


class Pipeline:
    """Runs the stages in order; see the module docstring for layout and resume rules."""

    def __init__(
        self,
        cfg: PipelineConfig,
        out: str | Path,
        *,
        collector: Collector | None = None,
        progress: bool = True,
    ) -> None:
        self.cfg, self.out, self.progress = cfg, Path(out), progress
        self.collector: Collector = collector or collect_inprocess
        self.out.mkdir(parents=True, exist_ok=True)
        self._check_config()
        self.state = self._load_state()

    # ----------------------------------------------------------------- bookkeeping
    def _check_config(self) -> None:
        path = self.out / "config.json"
        doc = json.loads(json.dumps(self.cfg.to_dict(), default=str))
        if path.exists():
            saved = _flatten(json.loads(path.read_text()))
            diff = {  # compared as JSON text: nan (an unset target entropy) equals itself
                k: (saved.get(k), v)
                for k, v in _flatten(doc).items()
                if json.dumps(saved.get(k)) != json.dumps(v)
            }
            if diff:
                details = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(diff.items()))
                raise ConfigError(
                    f"{self.out} holds a run with other settings ({details}); resume it with "
                    "the same settings or choose another --out"
                )
        else:
            path.write_text(json.dumps(doc, indent=2) + "\n")

    def _load_state(self) -> dict[str, StageRecord]:
        path = self.out / "state.json"
        doc = json.loads(path.read_text()) if path.exists() else {}
        return {s: StageRecord(**doc.get(s, {})) for s in STAGES}

    def _save_state(self) -> None:
        doc = {s: vars(r) for s, r in self.state.items()}
        tmp = self.out / "state.json.tmp"
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(self.out / "state.json")

    def _run_stage(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        record = self.state[name]
        if record.status == "done" and record.artefacts is not None:
            _LOG.info("stage %s: done earlier, skipped", name)
            return record.artefacts
        _LOG.info("stage %s: %s", name, "resuming" if record.status != "pending" else "starting")
        record.status = "running"
        self._save_state()
        t0 = time.perf_counter()
        try:
            artefacts = fn()
        finally:
            record.wall_s += time.perf_counter() - t0
            self._save_state()
        record.status, record.artefacts = "done", artefacts
        self._save_state()
        return artefacts

    def _rel(self, path: Path) -> str:
        """Artefact paths are stored relative to ``out`` so a run directory can be moved."""
        return str(Path(path).resolve().relative_to(self.out.resolve()))

    # ----------------------------------------------------------------- stages
    def learn(self) -> dict[str, Any]:
        from pld_nodes.core.residual.trainer import ResidualTrainer

        trainer = ResidualTrainer(self.cfg.learn, self.out / "learn", progress=self.progress)
        try:
            result = trainer.run()
        finally:
            trainer.close()
        weights = self.out / "learn" / "residual_actor.safetensors"
        return {
            "residual_weights": self._rel(weights),
            "specialist_test_success": result.final_success,
            "base_probe_success": result.base_probe_success,
            "env_steps": result.env_steps,
            "curve": [(p.env_steps, p.success_rate) for p in result.curve],
        }

    def collect(self, weights: Path) -> dict[str, Any]:
        c, learn = self.cfg.collect, self.cfg.learn
        request = CollectRequest(
            task=learn.task,
            base_checkpoint=learn.base_checkpoint,
            residual_weights=weights,
            store=self.out / "collect" / "episodes.zarr",
            successes=c.successes,
            episode_limit=c.episode_limit,
            alpha=c.alpha,
            t_max=learn.max_steps or task_max_steps(learn.task),
            seed=c.seed,
            execute_steps=learn.execute_steps,
        )
        request.store.parent.mkdir(parents=True, exist_ok=True)
        before = collect_status(request.store)
        bar = tqdm(
            total=c.successes, initial=min(before.successes, c.successes),
            desc=f"collect ({c.backend})", disable=not self.progress,
        )  # fmt: skip

        def progress(episodes: int, successes: int) -> None:
            bar.update(min(successes, c.successes) - bar.n)
            bar.set_postfix(episodes=episodes, refresh=False)

        try:
            if not before.done(request):
                self.collector(request, progress)
        finally:
            bar.close()
        status = collect_status(request.store)
        if status.successes == 0:
            raise RuntimeError(f"no successful episode in {status.episodes} collected")
        if status.successes < c.successes:
            _LOG.warning(
                "only %d/%d successes within %d episodes; distilling what there is",
                status.successes, c.successes, c.episode_limit,
            )  # fmt: skip
        return {
            "store": self._rel(request.store),
            "episodes": status.episodes,
            "successes": status.successes,
            "steps": status.steps,
            "backend": c.backend,
        }

    def distill(self, store: Path) -> dict[str, Any]:
        from pld_nodes.core.episode_data import load_distillation_episodes
        from pld_nodes.core.episode_store import EpisodeStore
        from pld_nodes.core.vla.distill import distill

        d = self.cfg.distill
        episodes = load_distillation_episodes(EpisodeStore.open(store), image_keys=self._cameras())
        episodes = episodes[: self.cfg.collect.successes]  # equal-size sets in comparisons
        demos = self._demos() if d.demo_fraction > 0 else []
        result = distill(d, episodes, self.out / "distill", demos, progress=self.progress)
        return {
            "checkpoint": self._rel(result.checkpoint),
            "episodes": len(episodes),
            "demos": len(demos),
            "steps": result.steps,
            "final_loss": result.final_loss,
            "metrics": self._rel(result.metrics_path),
        }

    def _demos(self) -> list[dict[str, Any]]:
        from pld_nodes.core.episode_data import load_training_episodes
        from pld_nodes.core.episode_store import EpisodeStore
        from pld_nodes.core.vla.distill import original_demos

        if self.cfg.demo_source == "recipe":
            return original_demos(self.cfg.distill.base_checkpoint)
        return load_training_episodes(
            EpisodeStore.open(self.cfg.demo_source), image_keys=self._cameras()
        )

    def _cameras(self) -> tuple[str, ...]:
        """The cameras the base VLA reads (its training data must carry them)."""
        from pld_nodes.core.policy.backends import resolve_checkpoint
        from pld_nodes.core.vla.checkpoint import read_config

        return read_config(resolve_checkpoint(self.cfg.distill.base_checkpoint))[0].image_keys

    def evaluate(self, weights: Path, distilled: str) -> dict[str, Any]:
        e, learn = self.cfg.evaluate, self.cfg.learn
        seeds = [e.seed + i for i in range(e.episodes)]
        setups = {
            "base": (learn.base_checkpoint, None),
            "specialist": (learn.base_checkpoint, weights),
            "distilled": (distilled, None),
        }
        results = {}
        for arm, (policy, residual) in setups.items():
            path = self.out / "evaluate" / f"{arm}.json"
            if path.exists():
                results[arm] = ArmResult.load(path)
                continue
            bar = tqdm(total=len(seeds), desc=f"evaluate {arm}", disable=not self.progress)
            try:
                result = evaluate_arm(
                    ARM_NAMES[arm], learn.task, policy, seeds, execute_steps=learn.execute_steps,
                    residual_weights=residual, progress=lambda b=bar: b.update(1),
                )  # fmt: skip
            finally:
                bar.close()
            result.save(path)
            results[arm] = result
            _LOG.info("%s: %.1f %% on %d episodes", arm, 100 * result.rate, len(seeds))
        return {arm: {"rate": r.rate, "episodes": len(r.successes)} for arm, r in results.items()}

    # ----------------------------------------------------------------- entry point
    def run(self) -> Path:
        from pld_nodes.core.pipeline.report import write_report

        learned = self._run_stage("learn", self.learn)
        weights = self.out / learned["residual_weights"]
        collected = self._run_stage("collect", lambda: self.collect(weights))
        distilled = self._run_stage("distill", lambda: self.distill(self.out / collected["store"]))
        checkpoint = str(self.out / distilled["checkpoint"])
        self._run_stage("evaluate", lambda: self.evaluate(weights, checkpoint))
        return write_report(self.cfg, self.out, self.state)
