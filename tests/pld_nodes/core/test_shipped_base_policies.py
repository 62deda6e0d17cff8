"""The shipped base policies load as Policies and are deliberately imperfect on sim Lift."""

import pytest

from pld_nodes.assets import base_policy_path, shipped_base_policies
from pld_nodes.core.policy.interface import Policy
from pld_nodes.core.vla.demos import evaluate_policy
from pld_nodes.core.vla.policy import BuiltinVLAPolicy


def test_both_heads_are_shipped() -> None:
    assert {"lift_flow", "lift_ar"} <= set(shipped_base_policies())
    with pytest.raises(FileNotFoundError, match="available"):
        base_policy_path("nope")


@pytest.mark.parametrize("name", ["lift_flow", "lift_ar"])
def test_shipped_base_is_imperfect_on_lift(name: str) -> None:
    """30 seeded episodes (env seeds 1000-1029, disjoint from the demo seeds): 30-70 %."""
    policy = BuiltinVLAPolicy.from_checkpoint(base_policy_path(name), device="cpu")
    assert isinstance(policy, Policy)
    assert policy.spec.uses_object_state and policy.spec.chunk_horizon == 8
    result = evaluate_policy(policy, "lift", episodes=30, seed=1000, execute_k=4)
    assert 0.3 <= result.success_rate <= 0.7, result
