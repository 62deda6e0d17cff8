"""The sim's scripted expert behind the Policy interface (backend ``expert``).

It lets the whole policy path (vla_node, chunk execution, arbiter) run with a known-good
policy in sim, and it is the "scripted demos" baseline of the distillation comparison. Sim only:
it reads privileged object state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pld_nodes.core.observation import PROPRIO_DIM, objects_of
from pld_nodes.core.policy.interface import PolicyObservation, PolicySpec


class ExpertPolicy:
    """Wraps ``sim_bridge.envs.experts`` (imported lazily: sim_bridge is optional here)."""

    def __init__(
        self,
        task: str,
        object_state_names: tuple[str, ...],
        noise_std: float = 0.0,
        seed: int | None = None,
        step_period_s: float = 0.05,
    ) -> None:
        from sim_bridge.envs.experts import make_expert

        if not object_state_names:
            raise ValueError("the expert policy needs the names of the object-state entries")
        self._expert = make_expert(
            task, noise_std=noise_std, seed=seed, object_names=objects_of(object_state_names)
        )
        self._spec = PolicySpec(
            name=f"expert-{task}",
            chunk_horizon=1,
            step_period_s=step_period_s,
            proprio_dim=PROPRIO_DIM,
            uses_object_state=True,
            object_state_dim=len(object_state_names),
        )
        self._needs_reset = True

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    def reset(self, seed: int | None = None) -> None:
        """Start of a new episode: the expert's phase machine restarts (``seed`` is unused: the
        expert's noise stream continues)."""
        self._needs_reset = True

    def infer(self, obs: PolicyObservation) -> np.ndarray:
        obs.validate(self._spec)
        env_obs: dict[str, Any] = {"proprio": obs.proprio, "object_state": obs.object_state}
        if self._needs_reset:
            self._expert.reset(env_obs, {})
            self._needs_reset = False
        return np.asarray(self._expert.act(env_obs), dtype=np.float32)[None, :]
