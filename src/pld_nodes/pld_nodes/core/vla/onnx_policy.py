"""The exported built-in VLA behind the ``Policy`` protocol, run by onnxruntime (no torch)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pld_nodes.core.policy.interface import PolicyObservation, PolicySpec, check_chunk
from pld_nodes.core.vla import packing
from pld_nodes.core.vla.config import VLAConfig

_LOG = logging.getLogger(__name__)


def default_providers() -> list[str]:
    """CUDA when this onnxruntime build has it, always with the CPU fallback."""
    available = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in wanted if p in available]


class OnnxVLAPolicy:
    """Runs a graph written by ``export_onnx``; reads the config from its ``.json`` sidecar.

    Flow noise comes from the same seeded numpy stream as :class:`BuiltinVLAPolicy`, so with
    equal ``noise_seed`` both backends return the same chunks up to float rounding.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        providers: list[str] | None = None,
        noise_seed: int | None = 0,
        intra_op_threads: int = 0,
        version: int = 0,
    ) -> None:
        path = Path(path)
        sidecar = Path(f"{path}.json")
        if not sidecar.is_file():
            raise FileNotFoundError(f"{sidecar} (written by export_onnx) is missing")
        doc = json.loads(sidecar.read_text())
        self.config = VLAConfig.from_dict(doc["config"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=providers or default_providers()
        )
        names = [i.name for i in self.session.get_inputs()]
        if names != packing.input_names(self.config):
            raise ValueError(
                f"{path} inputs {names} do not match its config {packing.input_names(self.config)}"
            )
        self._spec = packing.policy_spec(self.config, version)
        self._packer = packing.ObservationPacker(self.config, noise_seed)
        _LOG.info("onnx policy %s on %s", path, self.session.get_providers())

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    def reset(self, seed: int | None = None) -> None:
        """Restart the flow-noise stream."""
        self._packer.reset(seed)

    def run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Raw graph call on packed inputs (B, ...) -> (B, H, A); for benchmarks and tests."""
        return self.session.run([packing.OUTPUT], arrays)[0]

    def infer(self, obs: PolicyObservation) -> np.ndarray:
        """Action chunk (H, A) float32 in [-1, 1]."""
        return check_chunk(self.run(self._packer.pack(obs))[0], self._spec)
