"""The built-in VLA behind the :class:`~pld_nodes.core.policy.Policy` protocol (torch backend).

Inputs are packed by ``packing`` exactly as for the ONNX backend, so the two agree."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from pld_nodes.core.policy.interface import PolicyObservation, PolicySpec, check_chunk
from pld_nodes.core.vla import packing
from pld_nodes.core.vla.checkpoint import load_checkpoint
from pld_nodes.core.vla.config import VLAConfig
from pld_nodes.core.vla.model import BuiltinVLA

_LOG = logging.getLogger(__name__)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class BuiltinVLAPolicy:
    """Runs a :class:`BuiltinVLA` on single observations.

    Flow-head noise comes from a numpy stream seeded with ``noise_seed`` (shared with
    :class:`OnnxVLAPolicy`), so two policies with the same seed produce the same chunks;
    :meth:`reset` restarts the stream, e.g. at each episode start. ``num_threads`` sets torch's
    process-wide intra-op threads (1 is fastest for this model on a shared CPU); ``None``
    leaves it alone.
    """

    def __init__(
        self,
        model: BuiltinVLA,
        *,
        device: str | torch.device = "auto",
        noise_seed: int | None = 0,
        version: int = 0,
        num_threads: int | None = None,
    ) -> None:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.config: VLAConfig = model.config
        self._spec = packing.policy_spec(self.config, version)
        self._packer = packing.ObservationPacker(self.config, noise_seed)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        device: str | torch.device = "auto",
        noise_seed: int | None = 0,
        expected_config: VLAConfig | None = None,
        num_threads: int | None = None,
    ) -> BuiltinVLAPolicy:
        """Load weights + config from a checkpoint directory (see ``checkpoint``)."""
        loaded = load_checkpoint(path, expected_config=expected_config)
        version = int(loaded.metadata.get("training_steps", 0))
        _LOG.info("loaded %s (%s head, step %d)", path, loaded.config.head, version)
        return cls(
            loaded.model,
            device=device,
            noise_seed=noise_seed,
            version=version,
            num_threads=num_threads,
        )

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    def reset(self, seed: int | None = None) -> None:
        """Restart the flow-noise stream."""
        self._packer.reset(seed)

    def infer(self, obs: PolicyObservation) -> np.ndarray:
        """Action chunk (H, A) float32 in [-1, 1]."""
        arrays = self._packer.pack(obs)
        t = {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}
        images = {k: t[packing.IMAGE_PREFIX + k] for k in self.config.image_keys}
        with torch.inference_mode():
            chunk = self.model.sample(
                t[packing.PROPRIO],
                t[packing.TOKENS],
                t.get(packing.OBJECT_STATE),
                images,
                noise=t.get(packing.NOISE),
            )
        return check_chunk(chunk[0].float().cpu().numpy(), self._spec)
