"""Base-policy backends by name: one explicit registry, so "find usages" finds them all.

| kind      | what                                               | needs                    |
|-----------|----------------------------------------------------|--------------------------|
| `builtin` | the built-in torch VLA from a checkpoint directory | `checkpoint`, `device`   |
| `onnx`    | an ONNX export run by ONNX Runtime (CUDA if there) | `checkpoint` (.onnx file) |
| `openpi`  | a remote policy server speaking openpi's protocol  | `host`, `port`           |
| `expert`  | the sim's scripted expert (privileged state)       | `task`                   |
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from pld_nodes.core.policy.interface import Policy

BACKEND_KINDS = ("builtin", "onnx", "openpi", "expert")


@dataclass(frozen=True)
class BackendConfig:
    kind: str = "builtin"
    """One of builtin | onnx | openpi | expert."""
    checkpoint: str = ""
    """builtin: checkpoint directory or ``shipped:<name>`` (e.g. ``shipped:lift_flow``);
    onnx: the .onnx file (its .json sidecar next to it)."""
    device: str = "cpu"
    """builtin: torch device (cpu, cuda, cuda:1)."""
    torch_threads: int = 1
    """builtin on CPU: torch intra-op threads. 1 is fastest for the small built-in VLA on a
    shared CPU (2 threads made the AR head 10-50x slower when other processes compete)."""
    host: str = "127.0.0.1"
    port: int = 8000
    api_key_env: str = ""
    """openpi: name of the environment variable holding the API key (never the key itself)."""
    connect_timeout_s: float = 10.0
    task: str = "lift"
    """expert: sim task whose scripted expert acts."""
    noise_std: float = 0.0
    seed: int = 0
    step_period_s: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in BACKEND_KINDS:
            raise ValueError(f"backend kind must be one of {BACKEND_KINDS}, got {self.kind!r}")
        if self.kind in ("builtin", "onnx") and not self.checkpoint:
            raise ValueError(f"backend {self.kind!r} needs a checkpoint path")
        if self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {self.torch_threads}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        if not math.isfinite(self.connect_timeout_s) or self.connect_timeout_s <= 0:
            raise ValueError(f"connect_timeout_s must be > 0, got {self.connect_timeout_s}")

    @property
    def needs_object_names(self) -> bool:
        return self.kind == "expert"


SHIPPED_PREFIX = "shipped:"


def resolve_checkpoint(checkpoint: str) -> str:
    """``shipped:<name>`` -> the base policy shipped with pld_nodes; other paths unchanged."""
    if checkpoint.startswith(SHIPPED_PREFIX):
        from pld_nodes.assets import base_policy_path

        return str(base_policy_path(checkpoint[len(SHIPPED_PREFIX) :]))
    return checkpoint


def _builtin(cfg: BackendConfig, _names: tuple[str, ...]) -> Policy:
    from pld_nodes.core.vla.policy import BuiltinVLAPolicy

    return BuiltinVLAPolicy.from_checkpoint(
        resolve_checkpoint(cfg.checkpoint), device=cfg.device, num_threads=cfg.torch_threads
    )


def _onnx(cfg: BackendConfig, _names: tuple[str, ...]) -> Policy:
    from pld_nodes.core.vla.onnx_policy import OnnxVLAPolicy

    return OnnxVLAPolicy(cfg.checkpoint)


def _openpi(cfg: BackendConfig, _names: tuple[str, ...]) -> Policy:
    from pld_nodes.core.serving.openpi_client import OpenPiPolicy

    api_key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    if cfg.api_key_env and api_key is None:
        raise ValueError(f"environment variable {cfg.api_key_env!r} (API key) is not set")
    return OpenPiPolicy(
        cfg.host, cfg.port, api_key=api_key, connect_timeout_s=cfg.connect_timeout_s
    )


def _expert(cfg: BackendConfig, names: tuple[str, ...]) -> Policy:
    from pld_nodes.core.policy.expert_policy import ExpertPolicy

    return ExpertPolicy(cfg.task, names, cfg.noise_std, cfg.seed, cfg.step_period_s)


BACKENDS: dict[str, Callable[[BackendConfig, tuple[str, ...]], Policy]] = {
    "builtin": _builtin,
    "onnx": _onnx,
    "openpi": _openpi,
    "expert": _expert,
}


def make_policy(cfg: BackendConfig, object_state_names: tuple[str, ...] = ()) -> Policy:
    return BACKENDS[cfg.kind](cfg, object_state_names)
