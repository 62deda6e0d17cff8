"""Export the built-in VLA's whole inference path to one ONNX graph.

Flow head: the ``flow_steps`` Euler steps are unrolled and the t=0 noise is an explicit input,
so the graph is a pure function and matches torch given the same noise. AR head: the greedy
loop has a fixed length (H * A tokens), so it unrolls too (argmax feeds the next step's
embedding lookup); no Python loop around a step model is needed. Inputs are named as in
``packing.input_names``; the output ``actions`` is (B, H, A). A JSON sidecar
(``<file>.json``) holds the VLA config so :class:`OnnxVLAPolicy` needs neither torch nor the
checkpoint.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from pld_nodes.core.vla import packing
from pld_nodes.core.vla.model import BuiltinVLA
from pld_nodes.core.vla.onnx_policy import OnnxVLAPolicy

__all__ = ["OnnxVLAPolicy", "example_inputs", "export_onnx"]

_LOG = logging.getLogger(__name__)
OPSET = 18


class _InferenceGraph(nn.Module):
    """Positional inputs (``packing.input_names`` order) -> ``encode`` + head sampling."""

    def __init__(self, model: BuiltinVLA) -> None:
        super().__init__()
        self.model = model
        self.names = packing.input_names(model.config)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        args = dict(zip(self.names, inputs, strict=True))
        cfg = self.model.config
        ctx = self.model.encode(
            args[packing.PROPRIO],
            args[packing.TOKENS],
            args.get(packing.OBJECT_STATE),
            {k: args[packing.IMAGE_PREFIX + k] for k in cfg.image_keys},
        )
        if cfg.head == "flow":
            return self.model.head.sample(ctx, args[packing.NOISE])
        return self.model.head.sample(ctx)


def example_inputs(model: BuiltinVLA, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Zero inputs of the right dtypes/shapes, in graph input order."""
    c = model.config
    shapes: dict[str, tuple[tuple[int, ...], torch.dtype]] = {
        packing.PROPRIO: ((batch, c.proprio_dim), torch.float32),
        packing.TOKENS: ((batch, c.text.max_tokens), torch.int64),
        packing.OBJECT_STATE: ((batch, c.object_state_dim), torch.float32),
        packing.NOISE: ((batch, c.horizon, c.action_dim), torch.float32),
    }
    for key in c.image_keys:
        shapes[packing.IMAGE_PREFIX + key] = ((batch, *c.image_size, 3), torch.uint8)
    out = []
    for name in packing.input_names(c):
        shape, dtype = shapes[name]
        out.append(torch.zeros(shape, dtype=dtype))
    return tuple(out)


def export_onnx(
    model: BuiltinVLA, path: str | Path, *, dynamo: bool | None = None, opset: int = OPSET
) -> Path:
    """Write ``path`` (+ ``path.json`` sidecar); batch size is fixed to 1.

    ``dynamo=None`` tries the torch.export-based exporter first and falls back to the
    TorchScript exporter if it fails; pass True/False to force one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = _InferenceGraph(copy.deepcopy(model).cpu().eval()).eval()  # caller's model untouched
    args = example_inputs(model)
    names = packing.input_names(model.config)
    attempts = [True, False] if dynamo is None else [dynamo]
    errors = []
    for use_dynamo in attempts:
        try:
            with torch.no_grad(), warnings.catch_warnings():
                # Exporter deprecation chatter (TorchScript path, pytree) is not actionable here.
                warnings.simplefilter("ignore", category=DeprecationWarning)
                warnings.simplefilter("ignore", category=FutureWarning)
                _export(graph, args, names, path, use_dynamo, opset)
            break
        except Exception as exc:  # exporter failures are varied; report all attempts
            _LOG.warning("ONNX export with dynamo=%s failed: %s", use_dynamo, exc)
            errors.append(f"dynamo={use_dynamo}: {type(exc).__name__}: {exc}")
    else:
        raise RuntimeError("ONNX export failed: " + " | ".join(errors))
    sidecar = {"config": model.config.to_dict(), "inputs": names, "output": packing.OUTPUT}
    sidecar["exporter"] = "dynamo" if use_dynamo else "torchscript"
    Path(f"{path}.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    _LOG.info("exported %s head to %s (%s exporter)", model.config.head, path, sidecar["exporter"])
    return path


def _export(graph, args, names, path: Path, dynamo: bool, opset: int) -> None:
    kwargs = {"input_names": names, "output_names": [packing.OUTPUT], "opset_version": opset}
    if dynamo:
        program = torch.onnx.export(
            graph, args, dynamo=True, external_data=False, verbose=False, **kwargs
        )
        program.save(str(path))
    else:
        torch.onnx.export(graph, args, str(path), dynamo=False, **kwargs)
