"""Expert demos from the simulator, closed-loop evaluation, and the imperfect-base recipes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pld_nodes.core.policy.interface import PolicySpec
from pld_nodes.core.vla.dataset import EpisodeDataset
from pld_nodes.core.vla.demos import collect_expert_demos, evaluate_policy
from pld_nodes.core.vla.recipes import IMPERFECT_LIFT_RECIPES, build_imperfect_base

pytest.importorskip("robosuite")  # state-only sim: no GL context is created


class _ReplayPolicy:
    """Replays a recorded demo open loop, chunk by chunk (a stand-in for a trained VLA)."""

    def __init__(self, actions: np.ndarray, horizon: int = 8) -> None:
        self.actions, self.t = actions, 0
        self._spec = PolicySpec(name="replay", chunk_horizon=horizon)
        self.resets: list[int | None] = []

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    def reset(self, seed: int | None = None) -> None:
        self.resets.append(seed)
        self.t = 0

    def infer(self, obs) -> np.ndarray:
        assert obs.object_state is not None and obs.instruction
        idx = np.minimum(np.arange(self.t, self.t + 8), len(self.actions) - 1)
        self.t += 4
        return self.actions[idx]


@pytest.fixture(scope="module")
def demos() -> list[dict]:
    return collect_expert_demos("lift", episodes=2, seed=0)


def test_expert_demos_have_the_dataset_format(demos: list[dict]) -> None:
    assert len(demos) == 2
    for ep in demos:
        t = len(ep["actions"])
        assert ep["proprio"].shape == (t, 16) and ep["actions"].shape == (t, 7)
        assert ep["object_state"].shape == (t, 7) and ep["instruction"] == "lift the red cube"
        assert ep["proprio"].dtype == np.float32 and np.abs(ep["actions"]).max() <= 1.0
    EpisodeDataset(demos, 8, use_object_state=True)
    again = collect_expert_demos("lift", episodes=2, seed=0)
    np.testing.assert_array_equal(again[1]["actions"], demos[1]["actions"])


def test_closed_loop_evaluation_executes_k_of_h(demos: list[dict]) -> None:
    # Replaying episode-0 actions on the episode-0 seed reproduces the success.
    policy = _ReplayPolicy(demos[0]["actions"])
    result = evaluate_policy(policy, "lift", episodes=1, seed=demos[0]["seed"], execute_k=4)
    assert result.successes == (True,) and policy.resets == [demos[0]["seed"]]
    assert result.lengths[0] == len(demos[0]["actions"])
    assert result.inferences == -(-result.lengths[0] // 4)
    with pytest.raises(ValueError, match="execute_k"):
        evaluate_policy(policy, "lift", episodes=1, execute_k=9)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("PLD_RUN_SLOW"), reason="set PLD_RUN_SLOW=1")
@pytest.mark.parametrize("head", ["flow", "ar"])
def test_imperfect_base_recipe_is_imperfect(head: str, tmp_path: Path) -> None:
    base = build_imperfect_base(IMPERFECT_LIFT_RECIPES[head], tmp_path)
    assert base.evaluation is not None
    assert 0.3 <= base.evaluation.success_rate <= 0.7
