"""Recipes for deliberately imperfect built-in VLA base policies on sim tasks (Lift, LIBERO).

Residual RL needs a base policy that is decent but clearly improvable; these recipes (few
clean demos, short state-based training) give 30-70 % closed-loop success within about two
CPU minutes (flow ~10 s of training, AR ~100 s on one thread).
Run ``python -m pld_nodes.core.vla.recipes --task lift --head flow --out /tmp/base_flow`` to
rebuild one (``--task`` is any task with a recipe in ``IMPERFECT_BASE_RECIPES``).
Success rates are measured numbers on one machine, not guarantees: float differences between
CPUs or library versions change the trained weights and can move the rate by several points.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from pld_nodes.core.vla.config import VLAConfig
from pld_nodes.core.vla.dataset import EpisodeDataset
from pld_nodes.core.vla.demos import EvalResult, collect_expert_demos, evaluate_policy
from pld_nodes.core.vla.policy import BuiltinVLAPolicy
from pld_nodes.core.vla.text import HashTokenizer
from pld_nodes.core.vla.train import TrainConfig, TrainResult, train_sft

_LOG = logging.getLogger(__name__)


def task_object_state_dim(task: str) -> int:
    """Size of ``obs["object_state"]`` in ``task`` (from the env's observation space)."""
    from sim_bridge.envs import make_env

    env = make_env(task, render=False, privileged_state=True, seed=0)
    try:
        return int(env.observation_space["object_state"].shape[0])
    finally:
        env.close()


@dataclass(frozen=True)
class ImperfectBaseRecipe:
    """Everything that determines an imperfect base policy (state-only: proprio + object).

    Attributes:
        head: ``"flow"`` or ``"ar"``.
        task: sim task with a scripted expert (``"lift"``, ``"libero_object/0"``, ...).
        demo_episodes: successful expert demos kept (env seeds ``demo_seed + i``).
        demo_noise_std: Gaussian noise the expert adds to its motion actions.
        demo_seed: env and expert seed of the demos.
        steps, batch_size, lr: SFT schedule (cosine decay, AdamW).
        horizon: action chunk length H.
        execute_k: actions executed per chunk before re-inferring in closed loop.
        hidden_dim: width of the observation context (and AR GRU).
        train_seed: model init / batch sampling seed.
        eval_episodes, eval_seed: closed-loop evaluation (env seeds ``eval_seed + i``).
        expected_success: measured success rate when the recipe was tuned (for reference).
    """

    head: str
    demo_episodes: int
    demo_noise_std: float
    steps: int
    demo_seed: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    horizon: int = 8
    execute_k: int = 4
    hidden_dim: int = 128
    train_seed: int = 0
    eval_episodes: int = 30
    eval_seed: int = 1000
    expected_success: float = float("nan")
    task: str = "lift"

    @property
    def name(self) -> str:
        """Shipped name, e.g. ``lift_flow`` or ``libero_object_0_flow``."""
        return f"{self.task.replace('/', '_')}_{self.head}"

    def __post_init__(self) -> None:
        if self.demo_episodes < 1 or self.steps < 1 or self.eval_episodes < 1:
            raise ValueError(
                f"demo_episodes ({self.demo_episodes!r}), steps ({self.steps!r}) and "
                f"eval_episodes ({self.eval_episodes!r}) must be >= 1"
            )
        if not 1 <= self.execute_k <= self.horizon:
            raise ValueError(f"execute_k must be in [1, {self.horizon}], got {self.execute_k!r}")
        if self.demo_seed + self.demo_episodes * 3 > self.eval_seed:
            raise ValueError(
                f"demo seeds from {self.demo_seed} may overlap eval seeds from {self.eval_seed}"
            )

    def model_config(self, object_state_dim: int | None = None) -> VLAConfig:
        """Model config; ``object_state_dim`` defaults to the task env's (7 for Lift)."""
        if object_state_dim is None:
            object_state_dim = task_object_state_dim(self.task)
        return VLAConfig(
            name=f"builtin-{self.head}-{self.task.replace('/', '_')}-imperfect",
            head=self.head,
            horizon=self.horizon,
            use_object_state=True,
            object_state_dim=object_state_dim,
            hidden_dim=self.hidden_dim,
            ar_hidden=self.hidden_dim,
        )

    def train_config(
        self, progress: bool = False, object_state_dim: int | None = None
    ) -> TrainConfig:
        return TrainConfig(
            model=self.model_config(object_state_dim),
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            checkpoint_every=self.steps,
            seed=self.train_seed,
            progress=progress,
        )


IMPERFECT_LIFT_RECIPES: dict[str, ImperfectBaseRecipe] = {
    "flow": ImperfectBaseRecipe(
        head="flow", demo_episodes=10, demo_noise_std=0.0, steps=1000, expected_success=0.53
    ),
    "ar": ImperfectBaseRecipe(
        head="ar", demo_episodes=20, demo_noise_std=0.0, steps=800, expected_success=0.47
    ),
}

IMPERFECT_BASE_RECIPES: dict[str, ImperfectBaseRecipe] = {
    recipe.name: recipe
    for recipe in (
        *IMPERFECT_LIFT_RECIPES.values(),
        # LIBERO: clean demos give 0 % (the policy drifts off the small grasp targets in
        # closed loop); expert action noise (DART-style: the expert corrects from the perturbed
        # states) makes the base recover often enough. Object state is 49-D (7 objects x 7).
        ImperfectBaseRecipe(
            head="flow",
            task="libero_object/0",
            demo_episodes=30,
            demo_noise_std=0.3,
            steps=2000,
            eval_episodes=50,
            expected_success=0.52,
        ),
        ImperfectBaseRecipe(
            head="flow",
            task="libero_spatial/0",
            demo_episodes=40,
            demo_noise_std=0.3,
            steps=3000,
            eval_episodes=50,
            expected_success=0.34,
        ),
    )
}
"""All recipes keyed by shipped name (``<task with / as _>_<head>``)."""


def recipe_for(task: str, head: str) -> ImperfectBaseRecipe:
    """The recipe for ``task`` and ``head``; KeyError lists what exists."""
    name = f"{task.replace('/', '_')}_{head}"
    if name not in IMPERFECT_BASE_RECIPES:
        raise KeyError(f"no recipe {name!r}; available: {sorted(IMPERFECT_BASE_RECIPES)}")
    return IMPERFECT_BASE_RECIPES[name]


@dataclass(frozen=True)
class ImperfectBase:
    """A trained base policy checkpoint and how it did."""

    recipe: ImperfectBaseRecipe
    train: TrainResult
    evaluation: EvalResult | None


def build_imperfect_base(
    recipe: ImperfectBaseRecipe | str,
    out_dir: str | Path,
    *,
    evaluate: bool = True,
    progress: bool = False,
) -> ImperfectBase:
    """Collect demos, train, and (optionally) evaluate closed loop; resumes if interrupted.

    ``recipe`` may be a recipe, a Lift head (``"flow"``/``"ar"``) or a name from
    ``IMPERFECT_BASE_RECIPES`` (``"libero_object_0_flow"``).
    """
    if isinstance(recipe, str):
        if recipe in IMPERFECT_LIFT_RECIPES:
            recipe = IMPERFECT_LIFT_RECIPES[recipe]
        elif recipe in IMPERFECT_BASE_RECIPES:
            recipe = IMPERFECT_BASE_RECIPES[recipe]
        else:
            raise KeyError(
                f"no recipe {recipe!r}; available: {sorted(IMPERFECT_LIFT_RECIPES)} (Lift heads)"
                f" or {sorted(IMPERFECT_BASE_RECIPES)}"
            )
    demos = collect_expert_demos(
        recipe.task, recipe.demo_episodes, noise_std=recipe.demo_noise_std, seed=recipe.demo_seed
    )
    if not demos:
        raise RuntimeError(f"the {recipe.task!r} expert produced no successful demo")
    cfg = recipe.train_config(progress, object_state_dim=demos[0]["object_state"].shape[-1])
    dataset = EpisodeDataset(
        demos,
        recipe.horizon,
        seed=recipe.train_seed,
        use_object_state=True,
        tokenizer=HashTokenizer(cfg.model.text),
    )
    result = train_sft(cfg, dataset, out_dir)
    evaluation = None
    if evaluate:
        policy = BuiltinVLAPolicy.from_checkpoint(result.checkpoint, device="cpu")
        evaluation = evaluate_policy(
            policy,
            recipe.task,
            episodes=recipe.eval_episodes,
            seed=recipe.eval_seed,
            execute_k=recipe.execute_k,
        )
    return ImperfectBase(recipe, result, evaluation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tasks = sorted({r.task for r in IMPERFECT_BASE_RECIPES.values()})
    parser.add_argument("--task", choices=tasks, default="lift", help="sim task")
    parser.add_argument("--head", choices=["ar", "flow"], default="flow")
    parser.add_argument("--out", type=Path, required=True, help="training output directory")
    parser.add_argument("--no-eval", action="store_true", help="skip the closed-loop evaluation")
    args = parser.parse_args(argv)
    try:
        recipe = recipe_for(args.task, args.head)
    except KeyError as err:
        parser.error(str(err.args[0]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    base = build_imperfect_base(recipe, args.out, evaluate=not args.no_eval, progress=True)
    summary = {
        "recipe": asdict(base.recipe),
        "checkpoint": str(base.train.checkpoint),
        "train_s": round(base.train.wall_time_s, 1),
        "final_loss": base.train.final_loss,
    }
    if base.evaluation is not None:
        summary["success_rate"] = base.evaluation.success_rate
        summary["eval_s"] = round(base.evaluation.wall_time_s, 1)
    _LOG.info("%s", json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
