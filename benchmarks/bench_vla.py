"""Inference latency of the built-in VLA per backend: torch, onnxruntime, and torch behind our
openpi-protocol server (client -> localhost websocket -> server -> torch), batch 1, on CPU.

Usage: ``python benchmarks/bench_vla.py [--iters N] [--threads T]``

Times ``policy.infer`` end to end (validation, tokenising, packing, model, chunk check) with
randomly initialised default-size weights (latency does not depend on training), state-only
(proprio + object state) and with two 128x128 cameras. The control loop runs at 20 Hz and
re-infers every k steps, so p99 well under 50 ms leaves the budget to the rest of the stack.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pld_nodes.core.policy.interface import Policy, PolicyObservation
from pld_nodes.core.serving.openpi_client import OpenPiPolicy
from pld_nodes.core.serving.openpi_server import PolicyServer
from pld_nodes.core.vla.config import VLAConfig
from pld_nodes.core.vla.model import BuiltinVLA
from pld_nodes.core.vla.onnx_export import export_onnx
from pld_nodes.core.vla.onnx_policy import OnnxVLAPolicy
from pld_nodes.core.vla.policy import BuiltinVLAPolicy

_LOG = logging.getLogger("bench_vla")
CAMERAS = ("agentview", "robot0_eye_in_hand")


@dataclass(frozen=True)
class Case:
    """One model configuration to time on both backends."""

    head: str
    image_keys: tuple[str, ...]

    @property
    def label(self) -> str:
        return "state-only" if not self.image_keys else f"{len(self.image_keys)} cams 128x128"

    def config(self) -> VLAConfig:
        return VLAConfig(
            name=f"bench-{self.head}",
            head=self.head,
            use_object_state=True,
            object_state_dim=7,
            image_keys=self.image_keys,
            image_size=(128, 128),
        )


CASES = tuple(Case(h, cams) for h in ("flow", "ar") for cams in ((), CAMERAS))


def _observation(policy: Policy, rng: np.random.Generator) -> PolicyObservation:
    spec = policy.spec
    return PolicyObservation(
        proprio=rng.normal(size=spec.proprio_dim).astype(np.float32),
        instruction="lift the red cube",
        images={k: rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for k in spec.image_keys},
        object_state=rng.normal(size=spec.object_state_dim).astype(np.float32),
    )


def measure(policy: Policy, iters: int, warmup: int = 10) -> dict[str, float]:
    """p50/p99 latency of ``policy.infer`` over fresh random observations."""
    rng = np.random.default_rng(0)
    observations = [_observation(policy, rng) for _ in range(8)]
    for i in range(warmup):
        policy.infer(observations[i % 8])
    latencies = np.empty(iters)
    for i in range(iters):
        start = time.perf_counter()
        policy.infer(observations[i % 8])
        latencies[i] = time.perf_counter() - start
    return {
        "p50_ms": 1e3 * float(np.percentile(latencies, 50)),
        "p99_ms": 1e3 * float(np.percentile(latencies, 99)),
    }


def format_table(rows: list[tuple[Case, str, dict[str, float]]]) -> str:
    """Plain-text table, one row per (case, backend)."""
    header = (
        f"{'head':<5} {'inputs':<16} {'backend':<14} {'p50 ms':>8} {'p99 ms':>8} {'Hz@p50':>8}"
        f" {'vs torch p50':>13}"
    )
    lines = [header, "-" * len(header)]
    torch_p50 = {c.label + c.head: r["p50_ms"] for c, b, r in rows if b == "torch"}
    for case, backend, r in rows:
        hz = 1e3 / r["p50_ms"]
        extra = r["p50_ms"] - torch_p50[case.label + case.head]
        lines.append(
            f"{case.head:<5} {case.label:<16} {backend:<14} "
            f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {hz:>8.0f} {extra:>+12.2f}ms"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200, help="timed calls per row")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    args = parser.parse_args(argv)
    if args.iters < 1 or args.threads < 1:
        parser.error(f"--iters ({args.iters}) and --threads ({args.threads}) must be >= 1")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    _LOG.setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            torch.manual_seed(0)
            model = BuiltinVLA(case.config()).eval()
            local = BuiltinVLAPolicy(model, device="cpu")
            rows.append((case, "torch", measure(local, args.iters)))
            with PolicyServer(BuiltinVLAPolicy(model, device="cpu")) as server:
                remote = OpenPiPolicy("127.0.0.1", server.port)
                rows.append((case, "openpi server", measure(remote, args.iters)))
                remote.close()
            path = export_onnx(model, Path(tmp) / f"{case.head}_{len(case.image_keys)}.onnx")
            onnx = OnnxVLAPolicy(
                path, providers=["CPUExecutionProvider"], intra_op_threads=args.threads
            )
            rows.append((case, "onnxruntime", measure(onnx, args.iters)))
            _LOG.info("measured %s %s", case.head, case.label)
    sys.stdout.write(
        f"built-in VLA inference, batch 1, CPU, {args.threads} thread(s), {args.iters} calls\n"
    )
    sys.stdout.write(format_table(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
