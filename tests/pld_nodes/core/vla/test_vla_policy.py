"""The Policy protocol, torch vs ONNX agreement, and the sim helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pld_nodes.core.policy.interface import Policy, PolicyObservation, check_chunk
from pld_nodes.core.vla.checkpoint import save_checkpoint
from pld_nodes.core.vla.model import BuiltinVLA
from pld_nodes.core.vla.onnx_export import export_onnx
from pld_nodes.core.vla.onnx_policy import OnnxVLAPolicy
from pld_nodes.core.vla.policy import BuiltinVLAPolicy

CAMS = ("agentview", "wrist")


def _obs(policy: Policy, seed: int = 0) -> PolicyObservation:
    spec = policy.spec
    rng = np.random.default_rng(seed)
    return PolicyObservation(
        proprio=rng.normal(size=spec.proprio_dim).astype(np.float32),
        instruction="lift the red cube",
        images={
            k: rng.integers(0, 256, (*spec.image_size, 3), dtype=np.uint8) for k in spec.image_keys
        },
        object_state=rng.normal(size=spec.object_state_dim).astype(np.float32)
        if spec.uses_object_state
        else None,
    )


def _trained_like_model(cfg) -> BuiltinVLA:
    torch.manual_seed(1)
    model = BuiltinVLA(cfg).eval()
    with torch.no_grad():  # non-trivial normalisation so the buffers are exercised
        model.proprio_mean.uniform_(-0.5, 0.5)
        model.proprio_std.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("head", ["flow", "ar"])
def test_torch_policy_satisfies_the_protocol(make_config, tmp_path: Path, head: str) -> None:
    cfg = make_config(head, image_keys=CAMS, use_object_state=True, object_state_dim=7)
    save_checkpoint(_trained_like_model(cfg), tmp_path, {"training_steps": 42})
    policy = BuiltinVLAPolicy.from_checkpoint(tmp_path, device="cpu", noise_seed=3)
    assert isinstance(policy, Policy)
    assert policy.spec.version == 42 and policy.spec.chunk_horizon == cfg.horizon
    assert policy.spec.uses_object_state and policy.spec.image_keys == CAMS
    chunk = policy.infer(_obs(policy))
    assert chunk.shape == (cfg.horizon, 7) and chunk.dtype == np.float32
    np.testing.assert_array_equal(check_chunk(chunk, policy.spec), chunk)
    # Same seed -> same chunk sequence; reset() restarts the noise stream.
    again = BuiltinVLAPolicy.from_checkpoint(tmp_path, device="cpu", noise_seed=3)
    np.testing.assert_array_equal(again.infer(_obs(policy)), chunk)
    policy.reset()
    np.testing.assert_array_equal(policy.infer(_obs(policy)), chunk)
    with pytest.raises(ValueError, match="missing images"):
        policy.infer(PolicyObservation(np.zeros(16, np.float32), "x", object_state=np.zeros(7)))


@pytest.mark.parametrize(
    ("head", "images"), [("flow", ()), ("ar", ()), ("flow", CAMS)], ids=["flow", "ar", "flow-img"]
)
def test_onnx_matches_torch(make_config, tmp_path: Path, head: str, images: tuple) -> None:
    cfg = make_config(head, image_keys=images, use_object_state=True, object_state_dim=7)
    model = _trained_like_model(cfg)
    torch_policy = BuiltinVLAPolicy(model, device="cpu", noise_seed=11)
    path = export_onnx(model, tmp_path / "vla.onnx")
    onnx_policy = OnnxVLAPolicy(path, providers=["CPUExecutionProvider"], noise_seed=11)
    assert isinstance(onnx_policy, Policy) and onnx_policy.spec == torch_policy.spec
    a = np.stack([torch_policy.infer(_obs(torch_policy, s)) for s in range(5)])
    b = np.stack([onnx_policy.infer(_obs(onnx_policy, s)) for s in range(5)])
    if head == "flow":
        np.testing.assert_allclose(a, b, atol=1e-4)
    else:  # greedy tokens: allow a rare argmax flip from float rounding
        assert np.mean(np.isclose(a, b, atol=1e-6)) >= 0.95


def test_onnx_torchscript_fallback_exporter(make_config, tmp_path: Path) -> None:
    model = _trained_like_model(make_config("flow"))
    path = export_onnx(model, tmp_path / "ts.onnx", dynamo=False)
    policy = OnnxVLAPolicy(path, noise_seed=0)
    ref = BuiltinVLAPolicy(model, device="cpu", noise_seed=0)
    np.testing.assert_allclose(policy.infer(_obs(policy)), ref.infer(_obs(ref)), atol=1e-4)


def test_onnx_policy_needs_its_sidecar(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing\.onnx\.json"):
        OnnxVLAPolicy(tmp_path / "nothing.onnx")


def test_importing_the_onnx_policy_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import pld_nodes.core.vla.onnx_policy;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
