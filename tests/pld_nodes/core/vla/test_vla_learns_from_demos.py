"""A tiny built-in VLA trained on a handful of real sim demos: its loss falls and it predicts a
held-out demo's actions better than the same network untrained (both heads)."""

import json

import numpy as np
import pytest
import torch

from pld_nodes.core.policy.interface import PolicyObservation
from pld_nodes.core.vla.config import VLAConfig
from pld_nodes.core.vla.dataset import EpisodeDataset
from pld_nodes.core.vla.demos import collect_expert_demos
from pld_nodes.core.vla.model import BuiltinVLA
from pld_nodes.core.vla.policy import BuiltinVLAPolicy
from pld_nodes.core.vla.train import TrainConfig, train_sft


@pytest.fixture(scope="module")
def demos() -> list[dict]:
    return collect_expert_demos("lift", 6, seed=0)


def held_out_error(policy: BuiltinVLAPolicy, episode: dict) -> float:
    """Mean squared error of the first action of each chunk vs the demo, over the episode."""
    errors = []
    for t in range(0, len(episode["actions"]), 3):
        chunk = policy.infer(
            PolicyObservation(
                proprio=episode["proprio"][t],
                instruction=episode["instruction"],
                object_state=episode["object_state"][t],
            )
        )
        errors.append(np.mean((chunk[0] - episode["actions"][t]) ** 2))
    return float(np.mean(errors))


@pytest.mark.parametrize(("head", "steps"), [("flow", 300), ("ar", 150)])
def test_training_on_demos_beats_the_untrained_network(demos, tmp_path, head, steps) -> None:
    train, held_out = demos[:5], demos[5]
    config = VLAConfig(
        head=head,
        horizon=4,
        use_object_state=True,
        object_state_dim=7,
        hidden_dim=64,
        flow_hidden=64,
        ar_hidden=64,
        text_dim=16,
    )
    dataset = EpisodeDataset(train, config.horizon, seed=0, use_object_state=True)
    torch.manual_seed(0)
    untrained = BuiltinVLA(config)
    untrained.set_normalization(dataset.norm_stats())
    before = held_out_error(BuiltinVLAPolicy(untrained.eval(), device="cpu"), held_out)
    result = train_sft(
        TrainConfig(
            model=config,
            steps=steps,
            batch_size=64,
            lr=2e-3,
            checkpoint_every=steps,
            progress=False,
        ),
        dataset,
        tmp_path,
    )
    losses = [json.loads(line)["loss"] for line in result.metrics_path.read_text().splitlines()]
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    after = held_out_error(
        BuiltinVLAPolicy.from_checkpoint(result.checkpoint, device="cpu"), held_out
    )
    assert after < 0.5 * before, (before, after)
