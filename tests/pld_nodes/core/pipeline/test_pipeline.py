"""The PLD pipeline in-process with CI-sized budgets: every stage runs, hands off to the next,
resumes after an interruption, and the report shows what was measured."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pld_nodes.core.config import ConfigError
from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.pipeline.collect import CollectRequest, collect_inprocess, t_base_for
from pld_nodes.core.pipeline.config import CollectConfig, quick_pipeline_config
from pld_nodes.core.pipeline.evaluate import wilson_interval
from pld_nodes.core.pipeline.run import STAGES, Pipeline
from pld_nodes.core.residual.checkpoint import actor_from_bytes
from pld_nodes.core.vla.checkpoint import read_config


def quick_cfg(**collect):
    cfg = quick_pipeline_config()
    return replace(cfg, collect=replace(cfg.collect, backend="inprocess", **collect))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pipeline")
    Pipeline(quick_cfg(), out, progress=False).run()
    return out


def test_every_stage_ran_and_left_its_artefacts(finished: Path) -> None:
    state = json.loads((finished / "state.json").read_text())
    assert [state[s]["status"] for s in STAGES] == ["done"] * 4
    assert (finished / "learn" / "residual_actor.safetensors").is_file()
    assert (finished / state["distill"]["artefacts"]["checkpoint"] / "model.safetensors").is_file()
    for arm in ("base", "specialist", "distilled"):
        assert (finished / "evaluate" / f"{arm}.json").is_file()
    for png in ("success.png", "learning_curve.png", "distill_loss.png"):
        assert (finished / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (finished / "report.md").read_text()
    assert "| distilled VLA | **" in report and "95 % CI" in report and "| total |" in report


def test_collect_uses_the_learned_residual_and_the_arbiters_takeover(finished: Path) -> None:
    cfg = quick_cfg()
    loaded = actor_from_bytes((finished / "learn" / "residual_actor.safetensors").read_bytes())
    store = EpisodeStore.open(finished / "collect" / "episodes.zarr")
    request = CollectRequest("lift", "shipped:lift_flow", Path(), Path(), 2, 6, 0.6, 200, 20_000, 4)
    successes = len(store.episodes(success=True))
    assert successes >= cfg.collect.successes or store.n_episodes == cfg.collect.episode_limit
    for i in range(store.n_episodes):
        attrs, ep = store.episode_attrs(i), store.get_episode(i)
        assert attrs["seed"] == 20_000 + i and attrs["mode"] == "hybrid"
        assert attrs["t_base"] == min(t_base_for(request, i), attrs["length"])
        acting = ep["phase"] == 1
        np.testing.assert_array_equal(acting, np.arange(attrs["length"]) >= attrs["t_base"])
        expected = np.clip(ep["base_action"] + loaded.xi * ep["residual_action"], -1, 1)
        np.testing.assert_allclose(ep["action"][acting], expected[acting], atol=1e-6)
        np.testing.assert_array_equal(ep["action"][~acting], ep["base_action"][~acting])


def test_distill_trained_on_the_collected_successes_and_eval_shares_seeds(finished: Path) -> None:
    state = json.loads((finished / "state.json").read_text())
    store = EpisodeStore.open(finished / "collect" / "episodes.zarr")
    assert state["distill"]["artefacts"]["episodes"] == len(store.episodes(success=True))
    _, meta = read_config(finished / state["distill"]["artefacts"]["checkpoint"])
    assert meta["dataset"]["episodes"] == state["distill"]["artefacts"]["episodes"]
    assert meta["training_steps"] == quick_cfg().distill.steps
    seeds = {json.dumps(json.loads((finished / "evaluate" / f"{a}.json").read_text())["seeds"])
             for a in ("base", "specialist", "distilled")}  # fmt: skip
    assert seeds == {json.dumps([1000, 1001, 1002])}


def test_an_interrupted_pipeline_resumes_instead_of_restarting(tmp_path: Path) -> None:
    cfg = quick_cfg(successes=3, max_episodes=8)

    def interrupted(request, progress):
        def stop_after_one(episodes, successes):
            progress(episodes, successes)
            raise KeyboardInterrupt

        collect_inprocess(request, stop_after_one)

    with pytest.raises(KeyboardInterrupt):
        Pipeline(cfg, tmp_path, collector=interrupted, progress=False).run()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["learn"]["status"] == "done" and state["collect"]["status"] == "running"
    learn_files = {p: p.stat().st_mtime_ns for p in (tmp_path / "learn").rglob("*") if p.is_file()}
    assert EpisodeStore.open(tmp_path / "collect" / "episodes.zarr").n_episodes == 1

    Pipeline(cfg, tmp_path, progress=False).run()
    state = json.loads((tmp_path / "state.json").read_text())
    assert [state[s]["status"] for s in STAGES] == ["done"] * 4
    # learn was not re-run: not one of its files was rewritten
    assert {p: p.stat().st_mtime_ns for p in learn_files} == learn_files
    store = EpisodeStore.open(tmp_path / "collect" / "episodes.zarr")
    seeds = [store.episode_attrs(i)["seed"] for i in range(store.n_episodes)]
    assert seeds == list(range(20_000, 20_000 + len(seeds)))  # continued, nothing redone


def test_a_run_directory_refuses_other_settings(finished: Path) -> None:
    with pytest.raises(ConfigError, match=r"collect\.successes: 2 -> 5"):
        Pipeline(quick_cfg(successes=5), finished, progress=False)


def test_collect_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="backend"):
        CollectConfig(backend="carrier-pigeon")
    with pytest.raises(ConfigError, match="alpha"):
        CollectConfig(alpha=1.5)


@given(n=st.integers(1, 500), data=st.data())
def test_wilson_interval_brackets_the_rate(n: int, data) -> None:
    k = data.draw(st.integers(0, n))
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0 and hi - lo > 0


def test_source_comparison_distils_each_source_from_equal_episode_counts(finished, tmp_path):
    from pld_nodes.core.pipeline.comparison import SOURCES, CompareConfig, run_comparison

    report = run_comparison(finished, tmp_path, CompareConfig(episodes=2, eval_episodes=3), False)
    text = report.read_text()
    for source, name in SOURCES.items():
        result = json.loads((tmp_path / f"{source}.json").read_text())
        assert result["episodes"] == 2 and result["seeds"] == [1000, 1001, 1002]
        assert f"| {name} | 2 (" in text
    assert "| original base (no distillation) |" in text
    assert (tmp_path / "sources.png").read_bytes()[:4] == b"\x89PNG"
    residual_only = EpisodeStore.open(tmp_path / "residual_only.zarr")
    for i in range(residual_only.n_episodes):  # alpha = 0: the residual acts from step 0
        assert residual_only.episode_attrs(i)["t_base"] == 0
        assert np.all(residual_only.get_episode(i, ["phase"])["phase"] == 1)
    base_only = EpisodeStore.open(tmp_path / "base_rollouts.zarr")
    for i in range(base_only.n_episodes):  # the base's own rollouts: no residual at all
        ep = base_only.get_episode(i, ["phase", "action", "base_action"])
        assert np.all(ep["phase"] == 0) and np.array_equal(ep["action"], ep["base_action"])
