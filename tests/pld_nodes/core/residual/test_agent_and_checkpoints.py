"""SAC/Cal-QL updates, weights on the wire, learner checkpoints (round trip, corruption)."""

import numpy as np
import pytest
import torch

from pld_nodes.core.residual.agent import ResidualSAC
from pld_nodes.core.residual.checkpoint import (
    WeightsError,
    actor_from_bytes,
    actor_to_bytes,
    list_learner_checkpoints,
)
from pld_nodes.core.residual.config import ResidualPolicyConfig, SACConfig
from pld_nodes.core.residual.learner import ResidualLearner, layout_for
from pld_nodes.core.residual.networks import ObservationLayout

LAYOUT = ObservationLayout(state_dim=23)


def batch(n: int = 64, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    f = np.float32
    return {
        "state": rng.normal(size=(n, 23)).astype(f),
        "base": rng.uniform(-1, 1, (n, 7)).astype(f),
        "action": rng.uniform(-1, 1, (n, 7)).astype(f),
        "reward": (rng.random(n) < 0.1).astype(f),
        "next_state": rng.normal(size=(n, 23)).astype(f),
        "next_base": rng.uniform(-1, 1, (n, 7)).astype(f),
        "done": (rng.random(n) < 0.1).astype(f),
        "mc_return": rng.random(n).astype(f),
    }


def agent(**sac) -> ResidualSAC:
    return ResidualSAC(LAYOUT, ResidualPolicyConfig(), SACConfig(batch_size=64, **sac), seed=0)


def test_critic_actor_update_ratio() -> None:
    a = agent(critic_actor_ratio=3)
    for _ in range(9):
        a.update(batch(), xi=0.5)
    assert (a.critic_updates, a.actor_updates) == (9, 3)


def test_updates_move_the_actor_off_zero_and_keep_everything_finite() -> None:
    a = agent()
    for i in range(20):
        metrics = a.update(batch(seed=i), xi=0.5)
    assert all(np.isfinite(v) for v in metrics.values())
    out = a.act(batch()["state"], batch()["base"], deterministic=True)
    assert out.shape == (64, 7) and np.abs(out).max() > 0


def test_calql_pushes_unseen_actions_below_data_actions() -> None:
    """On a fixed dataset, the conservative term ranks data actions above random ones."""
    a = agent(calql_alpha=1.0, calql_actions=4)
    data = batch(128)
    data["reward"][:] = 0.0
    for _ in range(150):
        metrics = a.pretrain_critic(data, xi=0.5)
    assert "critic/calql_penalty" in metrics
    s, b = (torch.from_numpy(data[k]) for k in ("state", "base"))
    with torch.no_grad():
        q_data = a.critic(s, {}, b, torch.from_numpy(data["action"])).min(0).values
        q_rand = a.critic(s, {}, b, torch.rand(128, 7) * 2 - 1).min(0).values
    assert (q_data - q_rand).mean() > 0.1
    assert a.actor_updates == 0  # the warm start trains the critic only


def test_target_critic_tracks_with_tau() -> None:
    a = agent(tau=1.0)
    a.update_critic(batch(), xi=0.5, cql_alpha=0.0)
    for p, tp in zip(a.critic.parameters(), a.target_critic.parameters(), strict=True):
        assert torch.equal(p, tp)


def test_actor_weights_round_trip_with_version_and_xi() -> None:
    a = agent()
    for i in range(6):
        a.update(batch(seed=i), xi=0.5)
    a.set_state_stats(np.full(23, 0.5), np.full(23, 2.0))
    blob = actor_to_bytes(a.actor, version=7, xi=0.3, extra={"note": "x"})
    loaded = actor_from_bytes(blob, expected_layout=LAYOUT)
    assert (loaded.version, loaded.xi, loaded.metadata["note"]) == (7, 0.3, "x")
    s, b = torch.randn(5, 23), torch.rand(5, 7)
    with torch.no_grad():
        ref = a.actor(s, {}, b, deterministic=True)[0]
        got = loaded.actor(s, {}, b, deterministic=True)[0]
    assert torch.equal(ref, got)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda blob: blob[: len(blob) // 2],  # truncated
        lambda blob: b"",  # empty
        lambda blob: b"\xff" * 64,  # garbage header
        lambda blob: blob.replace(b"pld-residual-actor", b"pld-residual-actoX"),  # wrong format
    ],
)
def test_corrupt_weights_are_refused(corrupt) -> None:
    blob = actor_to_bytes(agent().actor, version=1, xi=0.5)
    with pytest.raises(WeightsError):
        actor_from_bytes(corrupt(blob))


def test_non_finite_weights_are_refused() -> None:
    a = agent()
    with torch.no_grad():
        next(a.actor.trunk.parameters())[0, 0] = float("nan")
    with pytest.raises(WeightsError, match="NaN"):
        actor_from_bytes(actor_to_bytes(a.actor, version=1, xi=0.5))


def test_layout_mismatch_is_refused() -> None:
    blob = actor_to_bytes(agent().actor, version=1, xi=0.5)
    with pytest.raises(WeightsError, match="this node runs"):
        actor_from_bytes(blob, expected_layout=ObservationLayout(state_dim=16))


def test_learner_checkpoint_round_trip(tmp_path, episode_factory) -> None:
    cfg = SACConfig(batch_size=32, calql_steps=0)
    ep = episode_factory(40, success=True)
    learner = ResidualLearner(layout_for(ep, ResidualPolicyConfig()), ResidualPolicyConfig(), cfg)
    learner.add_episode(ep, {"mode": "residual", "success": True})
    learner.train(8, xi=0.5)
    learner.next_weights(0.5)
    path = learner.save(str(tmp_path), {"note": 1})
    assert list_learner_checkpoints(tmp_path) == [tmp_path / "step_00000008"]

    other = ResidualLearner(learner.layout, ResidualPolicyConfig(), cfg, seed=5)
    state = other.resume(str(tmp_path))
    assert state is not None and state["note"] == 1 and other.version == 1 and other.stats_fixed
    assert (other.agent.critic_updates, other.agent.actor_updates) == (8, 4)
    for mod in ("actor", "critic", "target_critic"):
        sd_a = getattr(learner.agent, mod).state_dict()
        sd_b = getattr(other.agent, mod).state_dict()
        assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a), mod
    assert other.agent.alpha == pytest.approx(learner.agent.alpha)
    # optimiser moments restored: the next updates (critic, then actor + temperature) match
    b = learner.sample()
    for _ in range(2):
        torch.manual_seed(3)
        m1 = learner.agent.update(b, 0.5)
        torch.manual_seed(3)
        m2 = other.agent.update(b, 0.5)
        assert m1 == pytest.approx(m2)
    assert "actor/loss" in m1
    assert (tmp_path / "step_00000008" / "actor.safetensors").is_file() and path
