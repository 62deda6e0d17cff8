"""Files shipped with pld_nodes: the imperfect base policies that PLD improves in sim.

``base_policy_path("lift_flow")`` -> checkpoint directory (safetensors + config.json).
See ``base_policies/README.md`` for how each was made and how well it does.
"""

from __future__ import annotations

from pathlib import Path

_BASE = Path(__file__).resolve().parent / "base_policies"


def shipped_base_policies() -> list[str]:
    return sorted(p.name for p in _BASE.iterdir() if (p / "model.safetensors").is_file())


def base_policy_path(name: str) -> Path:
    path = _BASE / name
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"no shipped base policy {name!r}; available: {shipped_base_policies()}"
        )
    return path
