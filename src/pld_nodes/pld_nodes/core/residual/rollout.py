"""Base + residual rollouts in an in-process env (the sim trainer's fast path, no ROS).

One control step: the chunked base policy gives ``a_b`` (re-inferred every ``execute_steps``
steps, as vla_node does), the residual gives ``a_delta`` from (state, a_b) once the episode is
past its takeover step, and the env executes ``clip(a_b + xi * a_delta, -1, 1)``. Each episode
comes back in the episode-store step format (``replay.STEP_KEYS``) with its attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pld_nodes.core.policy.interface import Policy, PolicyObservation
from pld_nodes.core.residual.replay import PHASE_BASE, PHASE_RESIDUAL, residual_state

ResidualFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(state, a_b) -> a_delta in [-1, 1]."""


def deterministic_residual(actor: torch.nn.Module) -> ResidualFn:
    """The mean action of a state-input residual actor, as a rollout callback."""

    def residual(state: np.ndarray, base: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out, _ = actor(torch.from_numpy(state)[None], {}, torch.from_numpy(base)[None], True)
        return out[0].numpy()

    return residual


class ChunkedBase:
    """Executes the first ``execute_steps`` actions of each chunk, then re-infers."""

    def __init__(self, policy: Policy | None, execute_steps: int = 4, action_dim: int = 7) -> None:
        self.policy = policy
        self.execute_steps = execute_steps
        self.action_dim = action_dim
        self._chunk: np.ndarray | None = None
        self._k = 0
        self.inferences = 0

    def reset(self, seed: int) -> None:
        self._chunk, self._k = None, 0
        reset = getattr(self.policy, "reset", None)
        if callable(reset):
            reset(seed)

    def action(self, obs: dict[str, Any], instruction: str) -> np.ndarray:
        if self.policy is None:  # "no base": SAC from scratch acts alone
            return np.zeros(self.action_dim, np.float32)
        if self._chunk is None or self._k >= self.execute_steps:
            self._chunk = self.policy.infer(
                PolicyObservation(
                    proprio=obs["proprio"],
                    instruction=instruction,
                    object_state=obs.get("object_state"),
                    images=obs.get("images", {}),
                )
            )
            self._k = 0
            self.inferences += 1
        action = self._chunk[self._k]
        self._k += 1
        return np.asarray(action, np.float32)


@dataclass(frozen=True)
class StateSpec:
    use_proprio: bool = True
    use_object_state: bool = True

    def state(self, obs: dict[str, Any]) -> np.ndarray:
        return residual_state(
            obs["proprio"], obs.get("object_state"), self.use_proprio, self.use_object_state
        )


def run_episode(
    env: Any,
    base: ChunkedBase,
    residual: ResidualFn | None,
    *,
    seed: int,
    xi: float,
    takeover_step: int = 0,
    state_spec: StateSpec = StateSpec(),
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One episode; ``residual=None`` = base only. Returns (step arrays, attributes)."""
    obs, info = env.reset(seed=seed)
    base.reset(seed)
    instruction = env.instruction
    rows: dict[str, list] = {k: [] for k in ("proprio", "object_state", "base_action")}
    rows |= {k: [] for k in ("residual_action", "action", "phase", "reward")}
    step = 0
    while True:
        a_b = base.action(obs, instruction)
        acting = residual is not None and step >= takeover_step
        a_d = residual(state_spec.state(obs), a_b) if acting else np.zeros_like(a_b)
        a = np.clip(a_b + xi * a_d, -1.0, 1.0) if acting else a_b
        rows["proprio"].append(obs["proprio"])
        if "object_state" in obs:
            rows["object_state"].append(obs["object_state"])
        rows["base_action"].append(a_b)
        rows["residual_action"].append(a_d)
        rows["action"].append(a)
        rows["phase"].append(PHASE_RESIDUAL if acting else PHASE_BASE)
        obs, reward, terminated, truncated, info = env.step(a)
        rows["reward"].append(reward)
        step += 1
        if terminated or truncated:
            break
    dtypes = {"phase": np.int8}
    data = {k: np.asarray(v, dtypes.get(k, np.float32)) for k, v in rows.items() if len(v) == step}
    attrs = {
        "success": bool(info["success"]),
        "seed": int(seed),
        "task": info.get("task", ""),
        "instruction": instruction,
        "xi": float(xi),
        "t_base": int(min(takeover_step, step)) if residual is not None else int(step),
        "length": step,
    }
    return data, attrs
