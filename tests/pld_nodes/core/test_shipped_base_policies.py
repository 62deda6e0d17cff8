"""The shipped base policies load as Policies and are deliberately imperfect in sim."""

import os

import pytest

from pld_nodes.assets import base_policy_path, shipped_base_policies
from pld_nodes.core.policy.interface import Policy
from pld_nodes.core.vla.demos import evaluate_policy
from pld_nodes.core.vla.policy import BuiltinVLAPolicy

# name -> (task, head, object_state_dim); see assets/base_policies/README.md.
SHIPPED = {
    "lift_flow": ("lift", "flow", 7),
    "lift_ar": ("lift", "ar", 7),
    "libero_object_0_flow": ("libero_object/0", "flow", 49),
    "libero_spatial_0_flow": ("libero_spatial/0", "flow", 49),
}


def test_expected_policies_are_shipped() -> None:
    assert set(SHIPPED) == set(shipped_base_policies())
    with pytest.raises(FileNotFoundError, match="available"):
        base_policy_path("nope")


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_base_loads_as_policy(name: str) -> None:
    _, head, object_dim = SHIPPED[name]
    policy = BuiltinVLAPolicy.from_checkpoint(base_policy_path(name), device="cpu", num_threads=1)
    assert isinstance(policy, Policy)
    assert policy.spec.uses_object_state and policy.spec.chunk_horizon == 8
    assert policy.config.head == head
    assert policy.config.object_state_dim == object_dim


@pytest.mark.parametrize("name", ["lift_flow", "lift_ar"])
def test_shipped_base_is_imperfect_on_lift(name: str) -> None:
    """30 seeded episodes (env seeds 1000-1029, disjoint from the demo seeds): 30-70 %."""
    policy = BuiltinVLAPolicy.from_checkpoint(base_policy_path(name), device="cpu", num_threads=1)
    result = evaluate_policy(policy, "lift", episodes=30, seed=1000, execute_k=4)
    assert 0.3 <= result.success_rate <= 0.7, result


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("PLD_RUN_SLOW"), reason="set PLD_RUN_SLOW=1")
@pytest.mark.parametrize("name", ["libero_object_0_flow", "libero_spatial_0_flow"])
def test_shipped_base_is_imperfect_on_libero(name: str) -> None:
    """50 seeded episodes (env seeds 1000-1049; about 1-2 min each on one CPU core): 30-70 %."""
    task = SHIPPED[name][0]
    policy = BuiltinVLAPolicy.from_checkpoint(base_policy_path(name), device="cpu", num_threads=1)
    result = evaluate_policy(policy, task, episodes=50, seed=1000, execute_k=4)
    assert 0.3 <= result.success_rate <= 0.7, result
