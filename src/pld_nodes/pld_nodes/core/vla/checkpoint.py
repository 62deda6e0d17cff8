"""Checkpoints of the built-in VLA: safetensors weights + a JSON config, never pickle.

Layout of a checkpoint directory::

    model.safetensors       weights and normalisation buffers
    config.json             {"format", "format_version", "config", "metadata"}
    optimizer.safetensors   (training checkpoints only) AdamW moments and step counters
    trainer_state.json      (training checkpoints only) step, param groups, train config

Loading rebuilds the architecture from ``config.json`` and refuses weights that do not fit it,
or a config other than the one the caller expects, with the differing fields in the message.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pld_nodes.core.vla.config import VLAConfig
from pld_nodes.core.vla.model import BuiltinVLA

_LOG = logging.getLogger(__name__)
FORMAT = "pld-builtin-vla"
FORMAT_VERSION = 1
MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"
OPTIM_FILE, TRAINER_FILE = "optimizer.safetensors", "trainer_state.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, or does not match the expected architecture."""


@dataclass
class LoadedCheckpoint:
    """A model restored from disk with the metadata it was saved with."""

    model: BuiltinVLA
    config: VLAConfig
    metadata: dict[str, Any]
    path: Path


def save_checkpoint(
    model: BuiltinVLA, path: str | Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Write weights + config (+ ``metadata``: training steps, dataset info, ...) to ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / MODEL_FILE), metadata={"format": FORMAT})
    meta = {
        "head": model.config.head,
        "num_parameters": model.num_parameters(),
        "torch_version": torch.__version__,
        "saved_unix_s": round(time.time(), 3),
        **(metadata or {}),
    }
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "metadata": meta,
    }
    (path / CONFIG_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def read_config(path: str | Path) -> tuple[VLAConfig, dict[str, Any]]:
    """The config and metadata of a checkpoint, without loading weights."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise CheckpointError(f"no {CONFIG_FILE} in {path}; not a built-in VLA checkpoint")
    doc = json.loads(file.read_text())
    if doc.get("format") != FORMAT:
        raise CheckpointError(f"{file}: format {doc.get('format')!r}, expected {FORMAT!r}")
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{file}: format_version {doc.get('format_version')!r}, this code reads "
            f"{FORMAT_VERSION}"
        )
    try:
        config = VLAConfig.from_dict(doc["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{file}: invalid config: {exc}") from exc
    return config, dict(doc.get("metadata", {}))


def load_checkpoint(
    path: str | Path,
    expected_config: VLAConfig | None = None,
    device: str | torch.device = "cpu",
) -> LoadedCheckpoint:
    """Rebuild the model from ``path``; raise :class:`CheckpointError` on any mismatch."""
    path = Path(path)
    config, metadata = read_config(path)
    if expected_config is not None and config != expected_config:
        diff = expected_config.diff(config)
        details = ", ".join(
            f"{k}: expected {a!r}, checkpoint has {b!r}" for k, (a, b) in diff.items()
        )
        raise CheckpointError(f"checkpoint {path} config does not match: {details}")
    model = BuiltinVLA(config)
    weights = load_file(str(path / MODEL_FILE))
    _check_weights(model, weights, path)
    model.load_state_dict(weights, strict=True)
    model.to(device).eval()
    return LoadedCheckpoint(model, config, metadata, path)


def _check_weights(model: BuiltinVLA, weights: dict[str, torch.Tensor], path: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    missing, unexpected = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected.keys())
    shapes = [
        f"{k}: {got[k]} vs config {expected[k]}"
        for k in expected
        if k in got and got[k] != expected[k]
    ]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"weights in {path / MODEL_FILE} do not match its config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, shape mismatches {shapes[:5]}"
        )


# ---------------------------------------------------------------------- optimizer state
def save_training_state(
    path: str | Path, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Optimizer moments to safetensors, param groups and ``state`` (step, ...) to JSON."""
    path = Path(path)
    opt = optimizer.state_dict()
    tensors = {
        f"state.{idx}.{name}": value.detach().cpu().contiguous()
        for idx, per_param in opt["state"].items()
        for name, value in per_param.items()
    }
    save_file(tensors, str(path / OPTIM_FILE), metadata={"format": FORMAT})
    doc = {"param_groups": opt["param_groups"], **state}
    (path / TRAINER_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def load_training_state(path: str | Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore ``optimizer`` in place; return the JSON state saved with it."""
    path = Path(path)
    doc = json.loads((path / TRAINER_FILE).read_text())
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(path / OPTIM_FILE)).items():
        _, idx, name = key.split(".", 2)
        per_param.setdefault(int(idx), {})[name] = value
    groups = doc.pop("param_groups")
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    return doc


# ---------------------------------------------------------------------- training run directories
def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete ``step_XXXXXXXX`` checkpoints under ``root``, oldest first."""
    found = Path(root).glob("step_*")
    return sorted(p for p in found if p.is_dir() and not p.name.endswith(".tmp"))


def latest_checkpoint(root: str | Path) -> Path | None:
    """Most recent complete checkpoint under ``root`` (a run's ``checkpoints/``), if any."""
    found = list_checkpoints(root)
    return found[-1] if found else None


def save_training_checkpoint(
    root: Path,
    step: int,
    model: BuiltinVLA,
    optimizer: torch.optim.Optimizer,
    metadata: dict[str, Any],
    state: dict[str, Any],
    keep: int,
) -> Path:
    """Write ``root/step_<step>`` atomically (temp dir + rename) and prune to ``keep`` newest."""
    final = root / f"step_{step:08d}"
    tmp = root / f"{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_checkpoint(model, tmp, metadata)
    save_training_state(tmp, optimizer, state)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)  # a checkpoint is complete or absent, never half-written
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final
