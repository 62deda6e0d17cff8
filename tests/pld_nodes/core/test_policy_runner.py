"""PolicyRunner: when to infer, which action to emit, and what happens across episodes."""

import numpy as np
import pytest

from pld_nodes.core.policy.chunking import ChunkExecutionConfig
from pld_nodes.core.policy.interface import PolicyObservation, PolicySpec
from pld_nodes.core.policy.runner import PolicyRunner, StampedObservation

DT = 0.05


class CountingPolicy:
    """Chunk whose entry k is (number of calls, k): shows which inference produced an action."""

    def __init__(self, horizon: int = 4) -> None:
        self.spec = PolicySpec("counting", chunk_horizon=horizon, step_period_s=DT)
        self.calls = 0
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def infer(self, obs: PolicyObservation) -> np.ndarray:
        self.calls += 1
        chunk = np.zeros((self.spec.chunk_horizon, 7), np.float32)
        chunk[:, 0] = self.calls / 10.0
        chunk[:, 1] = np.arange(self.spec.chunk_horizon) / 10.0
        return chunk


def observation(t: float, episode: int = 0) -> StampedObservation:
    return StampedObservation(t, episode, PolicyObservation(np.zeros(16), "lift"))


def test_first_observation_waits_for_inference_then_chunk_is_reused() -> None:
    policy = CountingPolicy()
    runner = PolicyRunner(policy, ChunkExecutionConfig(execute_steps=3))
    action, start = runner.on_observation(observation(0.0))
    assert action is None and start
    chunk, answered, action = runner.run_inference()
    assert chunk is not None and answered.stamp_s == 0.0
    assert action[0] == pytest.approx(0.1) and action[1] == 0.0
    for k in (1, 2):  # steps 1 and 2 come from the same chunk, no new inference
        action, start = runner.on_observation(observation(k * DT))
        assert action[1] == pytest.approx(k / 10.0) and action[0] == pytest.approx(0.1)
        assert not start
    action, start = runner.on_observation(observation(3 * DT))  # k = 3 is beyond execute_steps
    assert action is None and start
    _, _, action = runner.run_inference()
    assert action[0] == pytest.approx(0.2) and policy.calls == 2


def test_prefetch_starts_inference_before_the_chunk_runs_out() -> None:
    runner = PolicyRunner(CountingPolicy(), ChunkExecutionConfig(execute_steps=4), prefetch_steps=2)
    runner.on_observation(observation(0.0))
    runner.run_inference()
    _, start = runner.on_observation(observation(1 * DT))
    assert not start  # 3 executable steps remain
    _, start = runner.on_observation(observation(2 * DT))
    assert start  # 2 remain: prefetch
    _, again = runner.on_observation(observation(2.2 * DT))
    assert not again  # one inference at a time


def test_new_episode_clears_chunks_and_resets_the_policy() -> None:
    policy = CountingPolicy()
    runner = PolicyRunner(policy, ChunkExecutionConfig(execute_steps=4))
    runner.on_observation(observation(0.0, episode=0))
    runner.run_inference()
    action, start = runner.on_observation(observation(1 * DT, episode=1))
    assert action is None and start  # nothing from the previous episode is reused
    assert policy.resets == 2


def test_result_for_a_finished_episode_is_discarded() -> None:
    runner = PolicyRunner(CountingPolicy(), ChunkExecutionConfig(execute_steps=4))
    runner.on_observation(observation(0.0, episode=0))
    runner.on_observation(observation(0.0, episode=1))  # reset while inference is queued
    chunk, _, action = runner.run_inference()
    assert chunk is not None and action is not None  # it ran on the newest (episode 1) obs


def test_bad_chunk_raises_and_frees_the_runner() -> None:
    class Broken(CountingPolicy):
        def infer(self, obs: PolicyObservation) -> np.ndarray:
            return np.full((4, 7), np.nan, np.float32)

    runner = PolicyRunner(Broken(), ChunkExecutionConfig())
    runner.on_observation(observation(0.0))
    with pytest.raises(ValueError, match="NaN"):
        runner.run_inference()
    assert runner.claim_retry()  # the observation still waits and the runner is free again
