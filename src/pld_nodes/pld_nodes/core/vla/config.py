"""Configuration of the built-in VLA and the normalisation statistics it carries.

The config is frozen and JSON round-trippable: a checkpoint stores it next to the weights, so a
loader can rebuild the exact architecture and refuse weights written for a different one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from pld_nodes.core.vla.text import TokenizerConfig

HEADS = ("flow", "ar")


def _tuple(value: Any) -> Any:
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value


@dataclass(frozen=True)
class VLAConfig:
    """Architecture of :class:`~pld_nodes.core.vla.model.BuiltinVLA`.

    Attributes:
        name: id reported in ``PolicySpec.name`` (e.g. ``builtin-flow``).
        head: ``"flow"`` (conditional flow matching, pi0-style) or ``"ar"`` (256-bin
            autoregressive tokens, OpenVLA-style).
        horizon: actions per chunk (H).
        action_dim: entries per action (7: delta EE pose + gripper, all in [-1, 1]).
        proprio_dim: proprio vector length (16, see ``core.observation``).
        use_object_state: read privileged object state (sim only; fast state-based runs).
        object_state_dim: object state length; must be >= 1 iff ``use_object_state``.
        image_keys: cameras encoded by the shared CNN; empty = no image input.
        image_size: (height, width) of every camera image (uint8 HxWx3).
        cnn_channels: output channels of the stride-2 conv layers of the image encoder
            (multiples of 8: each is followed by an 8-group GroupNorm).
        hidden_dim: width of the fused observation context and of the encoders' outputs.
        context_layers: hidden layers of the fusion MLP.
        text: hashed tokenizer settings (ids index the text embedding table).
        text_dim: text embedding width.
        flow_steps: Euler steps at inference for the flow head.
        flow_hidden: width of the flow head's velocity MLP.
        flow_layers: residual blocks of the velocity MLP.
        ar_bins: uniform bins over [-1, 1] per action entry for the AR head.
        ar_hidden: GRU width of the AR head.
        step_period_s: control period the chunk is meant for (``PolicySpec.step_period_s``).
    """

    name: str = "builtin-vla"
    head: str = "flow"
    horizon: int = 8
    action_dim: int = 7
    proprio_dim: int = 16
    use_object_state: bool = False
    object_state_dim: int = 0
    image_keys: tuple[str, ...] = ()
    image_size: tuple[int, int] = (128, 128)
    cnn_channels: tuple[int, ...] = (32, 64, 64, 64)
    hidden_dim: int = 256
    context_layers: int = 2
    text: TokenizerConfig = field(default_factory=TokenizerConfig)
    text_dim: int = 64
    flow_steps: int = 10
    flow_hidden: int = 256
    flow_layers: int = 3
    ar_bins: int = 256
    ar_hidden: int = 256
    step_period_s: float = 0.05

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must not be empty")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        positive = {
            "horizon": self.horizon,
            "action_dim": self.action_dim,
            "proprio_dim": self.proprio_dim,
            "hidden_dim": self.hidden_dim,
            "text_dim": self.text_dim,
            "flow_steps": self.flow_steps,
            "flow_hidden": self.flow_hidden,
            "flow_layers": self.flow_layers,
            "ar_hidden": self.ar_hidden,
        }
        for key, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive int, got {value!r}")
        if self.context_layers < 0:
            raise ValueError(f"context_layers must be >= 0, got {self.context_layers!r}")
        if self.ar_bins < 2:
            raise ValueError(f"ar_bins must be >= 2, got {self.ar_bins!r}")
        if self.use_object_state != (self.object_state_dim >= 1):
            raise ValueError(
                f"use_object_state={self.use_object_state!r} needs object_state_dim >= 1 "
                f"(and 0 otherwise), got {self.object_state_dim!r}"
            )
        if isinstance(self.image_keys, str) or len(set(self.image_keys)) != len(self.image_keys):
            raise ValueError(f"image_keys must be a tuple of unique names, got {self.image_keys!r}")
        if len(self.image_size) != 2 or min(self.image_size) < 16:
            raise ValueError(f"image_size must be (h, w) with both >= 16, got {self.image_size!r}")
        if self.image_keys and not self.cnn_channels:
            raise ValueError(f"cnn_channels must not be empty with images, got {self.cnn_channels}")
        if any(ch < 8 or ch % 8 for ch in self.cnn_channels):
            raise ValueError(
                f"cnn_channels must be multiples of 8 (GroupNorm), got {self.cnn_channels}"
            )
        if not math.isfinite(self.step_period_s) or self.step_period_s <= 0:
            raise ValueError(f"step_period_s must be > 0, got {self.step_period_s!r}")

    @property
    def chunk_size(self) -> int:
        """Scalars per chunk (H * action_dim), the AR head's token sequence length."""
        return self.horizon * self.action_dim

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VLAConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise so stale checkpoints fail loudly."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown VLAConfig keys {unknown}")
        values = {k: _tuple(v) for k, v in data.items()}
        if isinstance(values.get("text"), dict):
            values["text"] = TokenizerConfig(**{k: _tuple(v) for k, v in values["text"].items()})
        return cls(**values)

    def diff(self, other: VLAConfig) -> dict[str, tuple[Any, Any]]:
        """Fields that differ: name -> (self value, other value)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


@dataclass(frozen=True)
class NormStats:
    """Per-dimension mean/std of proprio (and object state) over the training data.

    Stored in the model as buffers, so checkpoints and ONNX graphs normalise identically.
    """

    proprio_mean: np.ndarray
    proprio_std: np.ndarray
    object_mean: np.ndarray | None = None
    object_std: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.proprio_mean.shape != self.proprio_std.shape:
            raise ValueError(
                f"proprio mean {self.proprio_mean.shape} and std {self.proprio_std.shape} differ"
            )
        if (self.object_mean is None) != (self.object_std is None):
            raise ValueError("object_mean and object_std must both be set or both be None")
        for arr in (self.proprio_std, self.object_std):
            if arr is not None and not np.all(np.isfinite(arr) & (arr > 0)):
                raise ValueError(f"std must be finite and > 0, got {arr}")
