"""Residual weights on the wire and learner checkpoints on disk: safetensors + JSON, no pickle.

*Actor weights* (what the learner publishes and the residual node hot-swaps) are one
safetensors blob whose metadata carries the format, the observation layout, the actor config,
the version and the residual scale xi. :func:`actor_from_bytes` refuses anything that does not
rebuild into a finite actor of the declared shape, so a corrupt message can never replace the
running weights.

*Learner checkpoints* (``step_XXXXXXXX`` directories, written atomically) hold actor, critics,
target critics, temperature and optimiser moments plus a JSON state (counters, xi, config), so
a learner resumes where it stopped; the replay is rebuilt from the episode store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, load_file, save, save_file

from pld_nodes.core.config import ConfigError, from_mapping
from pld_nodes.core.residual.agent import ResidualSAC
from pld_nodes.core.residual.config import ResidualPolicyConfig
from pld_nodes.core.residual.networks import ObservationLayout, ResidualActor

ACTOR_FORMAT = "pld-residual-actor"
ACTOR_FORMAT_VERSION = 1
LEARNER_FORMAT = "pld-residual-learner"
WEIGHTS_FILE, STATE_FILE, ACTOR_FILE = "learner.safetensors", "state.json", "actor.safetensors"


class WeightsError(ValueError):
    """Residual weights that cannot be used (corrupt, wrong format/shape, non-finite)."""


@dataclass
class LoadedActor:
    actor: ResidualActor
    version: int
    xi: float
    metadata: dict[str, Any]


def _policy_config_dict(config: ResidualPolicyConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _policy_config_from(data: dict[str, Any]) -> ResidualPolicyConfig:
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return from_mapping(ResidualPolicyConfig, values)


def actor_to_bytes(
    actor: ResidualActor, version: int, xi: float, extra: dict[str, Any] | None = None
) -> bytes:
    """Serialise the actor (weights + normalisation buffers) for publishing."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in actor.state_dict().items()}
    meta = {
        "format": ACTOR_FORMAT,
        "format_version": str(ACTOR_FORMAT_VERSION),
        "layout": json.dumps(actor.layout.to_dict()),
        "policy_config": json.dumps(_policy_config_dict(actor.config)),
        "version": str(int(version)),
        "xi": repr(float(xi)),
        "extra": json.dumps(extra or {}),
    }
    return save(tensors, metadata=meta)


def _read_header_metadata(data: bytes) -> dict[str, str]:
    """The safetensors ``__metadata__`` block (the format is: u64 header length, JSON header)."""
    if len(data) < 8:
        raise WeightsError(f"weights blob has {len(data)} bytes; not a safetensors file")
    size = int.from_bytes(data[:8], "little")
    if size <= 0 or 8 + size > len(data):
        raise WeightsError("weights blob has a truncated or invalid safetensors header")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"weights header is not JSON: {exc}") from exc
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        raise WeightsError("weights carry no metadata; not a residual actor blob")
    return meta


def actor_from_bytes(data: bytes, expected_layout: ObservationLayout | None = None) -> LoadedActor:
    """Rebuild an actor from :func:`actor_to_bytes` output; raise WeightsError if unusable."""
    meta = _read_header_metadata(data)
    if meta.get("format") != ACTOR_FORMAT:
        raise WeightsError(f"format {meta.get('format')!r}, expected {ACTOR_FORMAT!r}")
    if meta.get("format_version") != str(ACTOR_FORMAT_VERSION):
        raise WeightsError(f"format_version {meta.get('format_version')!r} is not supported")
    try:
        layout = ObservationLayout.from_dict(json.loads(meta["layout"]))
        config = _policy_config_from(json.loads(meta["policy_config"]))
        version, xi = int(meta["version"]), float(meta["xi"])
        extra = json.loads(meta.get("extra", "{}"))
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise WeightsError(f"weights metadata invalid: {exc}") from exc
    if expected_layout is not None and layout != expected_layout:
        raise WeightsError(f"weights are for {layout}, this node runs {expected_layout}")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"weights blob is corrupt: {exc}") from exc
    actor = ResidualActor(layout, config)
    expected = {k: tuple(v.shape) for k, v in actor.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        diff = sorted(set(expected.items()) ^ set(got.items()))[:4]
        raise WeightsError(f"weights do not fit the declared actor: {diff}")
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"weights contain NaN/inf in {bad[:4]}")
    actor.load_state_dict(tensors, strict=True)
    actor.eval()
    return LoadedActor(actor, version, xi, {"layout": layout, **extra})


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------- learner checkpoints
def _optimizer_tensors(name: str, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    return {
        f"opt.{name}.{idx}.{key}": value.detach().cpu().contiguous()
        for idx, per_param in opt.state_dict()["state"].items()
        for key, value in per_param.items()
    }


def _restore_optimizer(
    name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list
) -> None:
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    prefix = f"opt.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix) :].split(".", 1)
            per_param.setdefault(int(idx), {})[field] = value
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    opt.load_state_dict({"state": per_param, "param_groups": groups})


def save_learner_checkpoint(
    root: str | Path, agent: ResidualSAC, state: dict[str, Any], keep: int = 3
) -> Path:
    """Write ``root/step_<critic updates>`` atomically and keep the ``keep`` newest."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{agent.critic_updates:08d}"
    tmp = root / f"{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (
        ("actor", agent.actor),
        ("actor_ema", agent.actor_ema),
        ("critic", agent.critic),
        ("target_critic", agent.target_critic),
    ):
        tensors |= {
            f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()
        }
    tensors["log_alpha"] = agent.log_alpha.detach().cpu().clone()
    groups = {}
    for name, opt in (
        ("actor", agent.actor_opt),
        ("critic", agent.critic_opt),
        ("alpha", agent.alpha_opt),
    ):
        tensors |= _optimizer_tensors(name, opt)
        groups[name] = opt.state_dict()["param_groups"]
    save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": LEARNER_FORMAT})
    (tmp / ACTOR_FILE).write_bytes(
        actor_to_bytes(
            agent.deployed_actor, state.get("version", 0), state.get("xi", agent.policy_config.xi)
        )
    )
    doc = {
        "format": LEARNER_FORMAT,
        "layout": agent.layout.to_dict(),
        "policy_config": _policy_config_dict(agent.policy_config),
        "sac_config": dataclasses.asdict(agent.config),
        "critic_updates": agent.critic_updates,
        "actor_updates": agent.actor_updates,
        "online_updates": agent.online_updates,
        "param_groups": groups,
        "state": state,
    }
    (tmp / STATE_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True, default=float) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_learner_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_learner_checkpoints(root: str | Path) -> list[Path]:
    return sorted(
        p for p in Path(root).glob("step_*") if p.is_dir() and not p.name.endswith(".tmp")
    )


def read_learner_layout(path: str | Path) -> tuple[ObservationLayout, ResidualPolicyConfig]:
    doc = json.loads((Path(path) / STATE_FILE).read_text())
    return ObservationLayout.from_dict(doc["layout"]), _policy_config_from(doc["policy_config"])


def load_learner_checkpoint(path: str | Path, agent: ResidualSAC) -> dict[str, Any]:
    """Restore ``agent`` in place from a checkpoint directory; return the saved state dict."""
    path = Path(path)
    doc = json.loads((path / STATE_FILE).read_text())
    if doc.get("format") != LEARNER_FORMAT:
        raise WeightsError(f"{path} is not a residual learner checkpoint")
    layout = ObservationLayout.from_dict(doc["layout"])
    if layout != agent.layout:
        raise WeightsError(f"{path} was trained on {layout}, the learner now has {agent.layout}")
    tensors = load_file(str(path / WEIGHTS_FILE))
    for prefix, module in (
        ("actor", agent.actor),
        ("actor_ema", agent.actor_ema),
        ("critic", agent.critic),
        ("target_critic", agent.target_critic),
    ):
        sub = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        if prefix == "actor_ema" and not sub:  # written before the average existed
            sub = {k[6:]: v for k, v in tensors.items() if k.startswith("actor.")}
        module.load_state_dict(sub, strict=True)
    with torch.no_grad():
        agent.log_alpha.copy_(tensors["log_alpha"])
    for name, opt in (
        ("actor", agent.actor_opt),
        ("critic", agent.critic_opt),
        ("alpha", agent.alpha_opt),
    ):
        _restore_optimizer(name, opt, tensors, doc["param_groups"][name])
    agent.critic_updates = int(doc["critic_updates"])
    agent.actor_updates = int(doc["actor_updates"])
    agent.online_updates = int(doc.get("online_updates", 0))
    return dict(doc["state"])
