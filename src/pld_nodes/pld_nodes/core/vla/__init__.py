"""The built-in VLA: a small vision-language-action policy (flow-matching or autoregressive
head) used as the base policy in sim, CI and benchmarks, where pi0/OpenVLA do not fit a CPU.

Names are resolved lazily so that importing e.g. the ONNX policy does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TokenizerConfig": "text",
    "HashTokenizer": "text",
    "VLAConfig": "config",
    "NormStats": "config",
    "BuiltinVLA": "model",
    "EpisodeDataset": "dataset",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "TrainConfig": "train",
    "TrainResult": "train",
    "train_sft": "train",
    "BuiltinVLAPolicy": "policy",
    "export_onnx": "onnx_export",
    "OnnxVLAPolicy": "onnx_policy",
    "collect_expert_demos": "demos",
    "evaluate_policy": "demos",
    "EvalResult": "demos",
    "ImperfectBaseRecipe": "recipes",
    "IMPERFECT_LIFT_RECIPES": "recipes",
    "build_imperfect_base": "recipes",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
