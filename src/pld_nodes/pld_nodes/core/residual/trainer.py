"""Single-process residual RL on the sim (no ROS): PLD stage 1 for experiments and CI.

Stages, each resumable from ``<out>/episodes.zarr`` + ``<out>/checkpoints``:

1. **probe** — the frozen base acts alone until ``offline_episodes`` successes are collected
   (offline buffer; the success rate seen here is the base's);
2. **calql** — Cal-QL critic warm start on those successes;
3. **warmup** — ``warmup_episodes`` more base-only episodes into the online buffer;
4. **online** — SAC with RLPD 50/50 sampling, the residual acting from step 0, updates after
   every env step, deterministic evaluations every ``eval_every_steps`` on fixed seeds.

Every episode goes to the Zarr store with its stage/mode attributes, so a restart rebuilds the
replay exactly, and the store doubles as PLD's episode record. Without a base policy
(``base_checkpoint = "none"``) the same code is SAC from scratch (xi = 1, random warm-up).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.residual.checkpoint import actor_from_bytes, actor_to_bytes
from pld_nodes.core.residual.config import ResidualPolicyConfig, SACConfig, xi_at
from pld_nodes.core.residual.learner import ResidualLearner, layout_for
from pld_nodes.core.residual.rollout import (
    ChunkedBase,
    StateSpec,
    deterministic_residual,
    run_episode,
)

_LOG = logging.getLogger(__name__)
NO_BASE = "none"
TRAIN_SEED_OFFSET = 100_000
"""Training episodes use env seeds from here on, disjoint from evaluation seeds (1000+)."""
VALIDATION_SEED_OFFSET = 50_000
"""Periodic (validation) evaluations use eval_seed + this + i: disjoint from the final test."""
BEST_ACTOR_FILE = "best_actor.safetensors"


@dataclass(frozen=True)
class TrainConfig:
    task: str = "lift"
    base_checkpoint: str = "shipped:lift_flow"
    """A built-in VLA checkpoint (or ``shipped:<name>``); ``none`` = no base (SAC from scratch)."""
    execute_steps: int = 4
    max_steps: int = 0
    """Episode length limit; 0 = the task's default."""
    seed: int = 0
    offline_episodes: int = 50
    """Successful base rollouts for the offline buffer (paper: 50 per task)."""
    probe_max_episodes: int = 400
    warmup_episodes: int = 20
    """Base-only episodes into the online buffer before RL (paper: 100 (?))."""
    online_env_steps: int = 60_000
    eval_every_steps: int = 4_000
    eval_episodes: int = 50
    """Validation episodes per periodic evaluation; 50 (not 20) keeps the best-actor selection
    from picking a lucky streak (20 gave 95-100 % validation but 92 % on the test seeds)."""
    final_eval_episodes: int = 50
    eval_seed: int = 1000
    env_step_budget: int = 0
    """Stop online RL once the total env steps (probe + warm-up + online) reach this; 0 = only
    ``online_env_steps`` limits it. Used to give baselines the same budget."""
    stop_at_success: float = 1.01
    """Stop online RL early once a periodic evaluation reaches this success rate (> 1 = never)."""
    select_best: bool = True
    """Final evaluation and export use the actor of the best periodic evaluation (run on
    validation seeds disjoint from the final test seeds); False = the last actor."""
    xi_start: float = 0.5
    xi_ramp_steps: int = 0
    checkpoint_keep: int = 2
    torch_threads: int = 1
    policy: ResidualPolicyConfig = field(default_factory=ResidualPolicyConfig)
    sac: SACConfig = field(default_factory=SACConfig)

    @property
    def has_base(self) -> bool:
        return self.base_checkpoint.lower() != NO_BASE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvalPoint:
    env_steps: int
    online_steps: int
    success_rate: float
    episodes: int
    wall_s: float


@dataclass
class TrainResult:
    out_dir: Path
    curve: list[EvalPoint]
    final_success: float
    final_successes: list[bool]
    base_probe_success: float | None
    env_steps: int
    wall_s: float
    metrics: dict[str, float]


def make_task_env(cfg: TrainConfig) -> Any:
    from sim_bridge.envs import make_env

    kwargs: dict[str, Any] = {"render": False, "privileged_state": True, "seed": cfg.seed}
    if cfg.max_steps:
        kwargs["max_steps"] = cfg.max_steps
    return make_env(cfg.task, **kwargs)


def load_base_policy(cfg: TrainConfig) -> Any:
    if not cfg.has_base:
        return None
    from pld_nodes.core.policy.backends import resolve_checkpoint
    from pld_nodes.core.vla.policy import BuiltinVLAPolicy

    return BuiltinVLAPolicy.from_checkpoint(
        resolve_checkpoint(cfg.base_checkpoint), device="cpu", num_threads=cfg.torch_threads
    )


def evaluate(
    env: Any,
    base: ChunkedBase,
    residual: Any,
    *,
    seeds: list[int],
    xi: float,
    state_spec: StateSpec,
) -> list[bool]:
    """Deterministic closed-loop success on fixed seeds (``residual=None``: base alone)."""
    return [
        run_episode(env, base, residual, seed=s, xi=xi, state_spec=state_spec)[1]["success"]
        for s in seeds
    ]


class _Progress:
    """tqdm bar when available and interactive enough; plain log lines otherwise."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True)

    def update(self, n: int, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class ResidualTrainer:
    """Runs the stages; ``run()`` is idempotent over restarts of the same output directory."""

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, progress: bool = True) -> None:
        if not cfg.has_base:
            cfg = replace(
                cfg,
                offline_episodes=0,
                policy=replace(cfg.policy, xi=1.0),
                xi_start=1.0,
                sac=replace(cfg.sac, calql_steps=0),
            )
        self.cfg = cfg
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        torch.set_num_threads(cfg.torch_threads)
        self.env = make_task_env(cfg)
        self.base = ChunkedBase(load_base_policy(cfg), cfg.execute_steps)
        self.state_spec = StateSpec(cfg.policy.use_proprio, cfg.policy.use_object_state)
        self.rng = np.random.default_rng(cfg.seed)
        store_path = self.out / "episodes.zarr"
        self.store = (
            EpisodeStore.open(store_path, mode="a")
            if store_path.exists()
            else EpisodeStore.create(store_path)
        )
        self.learner: ResidualLearner | None = None
        self.curve: list[EvalPoint] = []
        self.metrics: dict[str, float] = {}
        self._tb = None
        (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")

    # ------------------------------------------------------------------ bookkeeping
    def _count(self, stage: str) -> tuple[int, int, int]:
        """(episodes, successes, env steps) recorded for ``stage``."""
        idx = self.store.episodes(stage=stage)
        succ = sum(bool(self.store.episode_attrs(i)["success"]) for i in idx)
        steps = sum(self.store.episode_length(i) for i in idx)
        return len(idx), succ, steps

    @property
    def env_steps(self) -> int:
        return sum(self._count(s)[2] for s in ("probe", "warmup", "online"))

    def _learner_for(self, data: dict[str, np.ndarray]) -> ResidualLearner:
        """The learner, built from the first episode's shapes."""
        if self.learner is None:
            self.learner = ResidualLearner(
                layout_for(data, self.cfg.policy), self.cfg.policy, self.cfg.sac, seed=self.cfg.seed
            )
        return self.learner

    def _record(self, data: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
        self.store.add_episode(data, attrs)
        self._learner_for(data).add_episode(data, attrs)

    def _episode(self, stage: str, residual: Any, xi: float) -> dict[str, Any]:
        seed = TRAIN_SEED_OFFSET + self.cfg.seed * 1_000_000 + self.store.n_episodes
        data, attrs = run_episode(
            self.env, self.base, residual, seed=seed, xi=xi, state_spec=self.state_spec
        )
        mode = "base" if residual is None else "residual"
        attrs |= {"stage": stage, "mode": mode, "label_source": "sim"}
        self._record(data, attrs)
        return attrs

    def _tb_writer(self) -> Any:
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.out / "tensorboard"))
        return self._tb

    def _log(self, step: int, values: dict[str, float]) -> None:
        writer = self._tb_writer()
        for k, v in values.items():
            writer.add_scalar(k, v, step)
        with (self.out / "metrics.jsonl").open("a") as f:
            f.write(json.dumps({"env_steps": step, **values}) + "\n")

    # ------------------------------------------------------------------ stages
    def _rebuild_replay(self) -> None:
        for i in range(self.store.n_episodes):
            data = self.store.get_episode(i)
            self._learner_for(data).add_episode(data, self.store.episode_attrs(i))

    def _probe(self) -> None:
        cfg = self.cfg
        n, succ, _ = self._count("probe")
        if succ >= cfg.offline_episodes or n >= cfg.probe_max_episodes:
            return
        bar = _Progress(cfg.offline_episodes, "probe (base successes)", self.progress)
        bar.update(succ)
        while succ < cfg.offline_episodes and n < cfg.probe_max_episodes:
            attrs = self._episode("probe", None, 0.0)
            n += 1
            succ += attrs["success"]
            bar.update(int(attrs["success"]), base_success=f"{succ / n:.2f}")
        bar.close()
        if succ < cfg.offline_episodes:
            _LOG.warning(
                "probe: only %d/%d successes in %d episodes", succ, cfg.offline_episodes, n
            )

    def _warmup(self) -> None:
        cfg = self.cfg
        n = self._count("warmup")[0]
        bar = _Progress(cfg.warmup_episodes, "warm-up episodes", self.progress)
        bar.update(n)
        random_residual = None
        if not cfg.has_base:  # SAC from scratch warms up with uniform random actions
            dim = self.base.action_dim

            def random_residual(_s: np.ndarray, _b: np.ndarray) -> np.ndarray:
                return self.rng.uniform(-1.0, 1.0, dim).astype(np.float32)

        for _ in range(n, cfg.warmup_episodes):
            self._episode("warmup", random_residual, 1.0 if random_residual else 0.0)
            bar.update(1)
        bar.close()

    def _evaluate(self, n: int, xi: float, first_seed: int, actor: Any = None) -> list[bool]:
        """Deterministic success of ``actor`` (default: the learner's) on n seeded episodes."""
        assert self.learner is not None
        learner = self.learner

        def learner_mean(state: np.ndarray, base: np.ndarray) -> np.ndarray:
            return learner.act(state, base, deterministic=True)

        residual = learner_mean if actor is None else deterministic_residual(actor)

        seeds = [first_seed + i for i in range(n)]
        return evaluate(
            self.env, self.base, residual, seeds=seeds, xi=xi, state_spec=self.state_spec
        )

    def _online(self, t_start: float) -> None:
        cfg, learner = self.cfg, self.learner
        assert learner is not None
        online_steps = self._count("online")[2]
        every = cfg.eval_every_steps
        next_eval = (online_steps // every + 1) * every
        if self.curve and self.curve[-1].success_rate >= cfg.stop_at_success:
            return
        bar = _Progress(cfg.online_env_steps, "online RL", self.progress)
        bar.update(min(online_steps, cfg.online_env_steps))
        spent = self.env_steps - online_steps  # probe + warm-up
        while online_steps < cfg.online_env_steps and not (
            cfg.env_step_budget and spent + online_steps >= cfg.env_step_budget
        ):
            xi = xi_at(online_steps, cfg.policy.xi, cfg.xi_start, cfg.xi_ramp_steps)

            def residual(state: np.ndarray, base: np.ndarray, xi: float = xi) -> np.ndarray:
                action = learner.act(state, base, deterministic=False)
                self.metrics |= learner.train(cfg.sac.updates_per_step, xi)
                return action

            attrs = self._episode("online", residual, xi)
            online_steps += attrs["length"]
            bar.update(
                attrs["length"],
                success=int(attrs["success"]),
                q=f"{self.metrics.get('critic/q_mean', 0.0):.3f}",
            )
            if online_steps >= next_eval:
                next_eval = (online_steps // every + 1) * every
                if self._periodic_eval(online_steps, xi, t_start):
                    break
        bar.close()

    def _periodic_eval(self, online_steps: int, xi: float, t_start: float) -> bool:
        cfg = self.cfg
        assert self.learner is not None
        successes = self._evaluate(cfg.eval_episodes, xi, cfg.eval_seed + VALIDATION_SEED_OFFSET)
        point = EvalPoint(
            env_steps=self.env_steps,
            online_steps=online_steps,
            success_rate=float(np.mean(successes)),
            episodes=len(successes),
            wall_s=time.perf_counter() - t_start,
        )
        self.curve.append(point)
        self._log(point.env_steps, {"eval/success": point.success_rate, "xi": xi, **self.metrics})
        _LOG.info("eval at %d env steps: success %.2f", point.env_steps, point.success_rate)
        if point.success_rate >= self._best_success():  # ties: the later, more trained actor
            blob = actor_to_bytes(self.learner.agent.deployed_actor, len(self.curve), xi)
            (self.out / BEST_ACTOR_FILE).write_bytes(blob)
            (self.out / BEST_ACTOR_FILE).with_suffix(".json").write_text(json.dumps(asdict(point)))
        self.learner.save(str(self.out / "checkpoints"), self._state(), cfg.checkpoint_keep)
        return point.success_rate >= cfg.stop_at_success

    def _best_success(self) -> float:
        meta = (self.out / BEST_ACTOR_FILE).with_suffix(".json")
        return json.loads(meta.read_text())["success_rate"] if meta.exists() else -1.0

    def _state(self) -> dict[str, Any]:
        return {"curve": [asdict(p) for p in self.curve], "xi": self.cfg.policy.xi}

    # ------------------------------------------------------------------ entry point
    def run(self) -> TrainResult:
        cfg = self.cfg
        t0 = time.perf_counter()
        self._rebuild_replay()
        if self.learner is not None:
            state = self.learner.resume(str(self.out / "checkpoints"))
            if state is not None:
                self.curve = [EvalPoint(**p) for p in state.get("curve", [])]
        self._probe()
        n_probe, probe_succ, _ = self._count("probe")
        assert self.learner is not None or cfg.warmup_episodes > 0
        if self.learner is not None and self.learner.pretrained_steps < cfg.sac.calql_steps:
            bar = _Progress(cfg.sac.calql_steps, "Cal-QL warm start", self.progress)
            bar.update(self.learner.pretrained_steps)
            remaining = cfg.sac.calql_steps - self.learner.pretrained_steps
            m = self.learner.pretrain(
                remaining, cfg.xi_start, lambda i, m: bar.update(1, q=f"{m['critic/q_mean']:.3f}")
            )
            bar.close()
            self._log(self.env_steps, {f"calql/{k.split('/')[-1]}": v for k, v in m.items()})
            self.learner.save(str(self.out / "checkpoints"), self._state(), cfg.checkpoint_keep)
        self._warmup()
        if not self.curve:  # the starting point of the learning curve: zero residual
            self._periodic_eval(0, cfg.xi_start, t0)
        self._online(t0)
        xi = xi_at(self._count("online")[2], cfg.policy.xi, cfg.xi_start, cfg.xi_ramp_steps)
        assert self.learner is not None
        self.learner.save(str(self.out / "checkpoints"), self._state(), cfg.checkpoint_keep)
        best = self.out / BEST_ACTOR_FILE
        if cfg.select_best and best.exists():
            blob = best.read_bytes()
            chosen = json.loads(best.with_suffix(".json").read_text())
            _LOG.info("final evaluation of the best validated actor: %s", chosen)
            final = self._evaluate(
                cfg.final_eval_episodes, xi, cfg.eval_seed, actor_from_bytes(blob).actor
            )
        else:
            blob = self.learner.next_weights(xi)[1]
            final = self._evaluate(cfg.final_eval_episodes, xi, cfg.eval_seed)
        (self.out / "residual_actor.safetensors").write_bytes(blob)
        result = TrainResult(
            out_dir=self.out,
            curve=self.curve,
            final_success=float(np.mean(final)),
            final_successes=[bool(s) for s in final],
            base_probe_success=probe_succ / n_probe if n_probe else None,
            env_steps=self.env_steps,
            wall_s=time.perf_counter() - t0,
            metrics=dict(self.metrics),
        )
        summary = {k: v for k, v in asdict(result).items() if k != "out_dir"}
        (self.out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
        if self._tb is not None:
            self._tb.close()
        return result

    def close(self) -> None:
        self.env.close()


def train_config_from_mapping(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from plain data (YAML/JSON): nested ``policy`` and ``sac`` sections."""
    from pld_nodes.core.config import from_mapping

    values = dict(values)
    nested = {
        "policy": (ResidualPolicyConfig, values.pop("policy", {}) or {}),
        "sac": (SACConfig, values.pop("sac", {}) or {}),
    }
    built = {
        key: from_mapping(cls, {k: tuple(v) if isinstance(v, list) else v for k, v in sub.items()})
        for key, (cls, sub) in nested.items()
    }
    return from_mapping(TrainConfig, values | built)
