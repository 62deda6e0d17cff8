"""The single-process sim trainer and the stage-1 comparison, CI-sized, on real MuJoCo."""

import json
from dataclasses import replace

import numpy as np
import pytest

from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.residual.checkpoint import actor_from_bytes, list_learner_checkpoints
from pld_nodes.core.residual.experiment import quick_config, run_comparison
from pld_nodes.core.residual.trainer import ResidualTrainer, TrainConfig

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def stages(store: EpisodeStore) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(store.n_episodes):
        stage = store.episode_attrs(i)["stage"]
        out[stage] = out.get(stage, 0) + 1
    return out


def test_quick_comparison_runs_every_stage_and_writes_the_report(tmp_path) -> None:
    arms = run_comparison(quick_config(), tmp_path, progress=False)
    assert set(arms) == {"base", "pld", "scratch"}
    for name in ("report.md", "learning_curves.png", "comparison.json"):
        assert (tmp_path / name).stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert "PLD residual" in report and "SAC from scratch" in report and "base alone" in report

    pld = tmp_path / "pld_residual"
    store = EpisodeStore.open(pld / "episodes.zarr")
    counts = stages(store)
    assert counts["warmup"] == 1 and counts["online"] >= 1
    assert len(store.episodes(stage="probe", success=True)) == 3
    probe_ep = store.get_episode(store.episodes(stage="probe")[0])
    assert np.array_equal(probe_ep["action"], probe_ep["base_action"])  # base acted alone
    online = store.get_episode(store.episodes(stage="online")[0])
    assert np.abs(online["residual_action"]).max() > 0  # the residual acted
    expected = np.clip(online["base_action"] + 0.5 * online["residual_action"], -1, 1)
    np.testing.assert_allclose(online["action"], expected, atol=1e-6)
    assert list_learner_checkpoints(pld / "checkpoints")
    result = json.loads((pld / "result.json").read_text())
    assert result["env_steps"] == store.n_steps
    actor = actor_from_bytes((pld / "residual_actor.safetensors").read_bytes())
    assert actor.xi == 0.5 and actor.version >= 1
    lines = (pld / "metrics.jsonl").read_text().splitlines()
    assert any("eval/success" in line for line in lines)
    assert any((pld / "tensorboard").iterdir())

    scratch = tmp_path / "sac_scratch"
    s_store = EpisodeStore.open(scratch / "episodes.zarr")
    assert "probe" not in stages(s_store)  # no base, no offline data
    assert arms["scratch"].env_steps >= arms["pld"].env_steps  # the same budget (+1 episode)
    first = s_store.get_episode(0)
    assert np.all(first["base_action"] == 0)  # no base policy: the actor acts alone
    assert json.loads((scratch / "config.json").read_text())["policy"]["xi"] == 1.0


def test_an_interrupted_run_resumes_instead_of_restarting(tmp_path) -> None:
    short = replace(quick_config(), online_env_steps=150, final_eval_episodes=1)
    first = ResidualTrainer(short, tmp_path, progress=False)
    try:
        first.run()
    finally:
        first.close()
    store = EpisodeStore.open(tmp_path / "episodes.zarr")
    before = stages(store)
    updates_before = first.learner.agent.critic_updates
    longer = replace(short, online_env_steps=300)
    second = ResidualTrainer(longer, tmp_path, progress=False)
    try:
        second.run()
    finally:
        second.close()
    after = stages(EpisodeStore.open(tmp_path / "episodes.zarr"))
    assert after["probe"] == before["probe"] and after["warmup"] == before["warmup"]
    assert after["online"] > before["online"]
    assert second.learner.pretrained_steps == short.sac.calql_steps  # not redone
    assert second.learner.agent.critic_updates > updates_before


def test_config_rejects_nonsense() -> None:
    from pld_nodes.core.config import ConfigError
    from pld_nodes.core.residual.config import ResidualPolicyConfig, SACConfig

    with pytest.raises(ConfigError):
        SACConfig(gamma=1.5)
    with pytest.raises(ConfigError):
        ResidualPolicyConfig(xi=0.0)
    with pytest.raises(ConfigError):
        ResidualPolicyConfig(use_proprio=False, use_object_state=False)
    assert TrainConfig(base_checkpoint="none").has_base is False
