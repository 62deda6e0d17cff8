"""Round-trip cost of serving a policy over openpi's websocket protocol on localhost.

Usage: ``python benchmarks/bench_policy_server.py [--requests N] [--warmup N]``

A trivial policy (answer computed from proprio in microseconds) isolates the transport:
msgpack-numpy encoding, websocket framing, the server's event loop and worker-thread hop. Each
case is compared with calling ``policy.infer`` in-process, so the table shows what moving the
base policy behind a server costs per control step (20 Hz => 50 ms budget).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass

import numpy as np

from pld_nodes.core.policy.interface import PolicyObservation, PolicySpec
from pld_nodes.core.serving import ObservationKeys, OpenPiPolicy, PolicyServer
from pld_nodes.core.serving.msgpack_numpy import packb

_LOG = logging.getLogger("bench_policy_server")
CAMERAS = ("agentview", "robot0_eye_in_hand")


@dataclass(frozen=True)
class Case:
    label: str
    spec: PolicySpec


CASES = (
    Case("state only", PolicySpec(name="trivial", image_keys=())),
    Case("2 cams 128x128", PolicySpec(name="trivial", image_keys=CAMERAS, image_size=(128, 128))),
    Case("2 cams 224x224", PolicySpec(name="trivial", image_keys=CAMERAS, image_size=(224, 224))),
)


class TrivialPolicy:
    """chunk[k] = tanh(proprio[:action_dim] + 0.01 k): negligible compute, real shapes."""

    def __init__(self, spec: PolicySpec) -> None:
        self._spec = spec
        self._steps = 0.01 * np.arange(spec.chunk_horizon, dtype=np.float64)[:, None]

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    def infer(self, obs: PolicyObservation) -> np.ndarray:
        return np.tanh(obs.proprio[None, : self._spec.action_dim] + self._steps).astype(np.float32)


def make_obs(spec: PolicySpec, rng: np.random.Generator) -> PolicyObservation:
    return PolicyObservation(
        proprio=rng.uniform(-1.0, 1.0, spec.proprio_dim),
        instruction="lift the cube",
        images={
            cam: rng.integers(0, 256, (*spec.image_size, 3), dtype=np.uint8)
            for cam in spec.image_keys
        },
    )


def timed(fn: object, obs: PolicyObservation, n: int, warmup: int) -> np.ndarray:
    """Per-call latencies in seconds."""
    for _ in range(warmup):
        fn(obs)  # type: ignore[operator]
    out = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        fn(obs)  # type: ignore[operator]
        out[i] = time.perf_counter() - start
    return out


def measure(case: Case, requests: int, warmup: int) -> dict[str, float]:
    policy = TrivialPolicy(case.spec)
    obs = make_obs(case.spec, np.random.default_rng(0))
    direct = timed(policy.infer, obs, requests, warmup)
    with (
        PolicyServer(policy, "127.0.0.1", 0) as server,
        OpenPiPolicy("127.0.0.1", server.port, connect_retry_s=5.0) as client,
    ):
        np.testing.assert_array_equal(client.infer(obs), policy.infer(obs))
        remote = timed(client.infer, obs, requests, warmup)
    direct_p50 = float(np.percentile(direct, 50))
    remote_p50 = float(np.percentile(remote, 50))
    return {
        "kib": len(packb(ObservationKeys().encode(obs))) / 1024.0,
        "p50_ms": 1e3 * remote_p50,
        "p99_ms": 1e3 * float(np.percentile(remote, 99)),
        "req_s": requests / float(remote.sum()),
        "direct_p50_us": 1e6 * direct_p50,
        "direct_p99_us": 1e6 * float(np.percentile(direct, 99)),
        "ratio": remote_p50 / direct_p50,
    }


def format_table(rows: list[tuple[str, dict[str, float]]]) -> str:
    header = (
        f"{'observation':<16} {'req KiB':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} "
        f"{'direct p50 us':>14} {'direct p99 us':>14} {'p50 ratio':>10}"
    )
    lines = [header, "-" * len(header)]
    for label, r in rows:
        lines.append(
            f"{label:<16} {r['kib']:>8.1f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
            f"{r['req_s']:>8.0f} {r['direct_p50_us']:>14.1f} {r['direct_p99_us']:>14.1f} "
            f"{r['ratio']:>9.0f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per case")
    parser.add_argument("--warmup", type=int, default=100, help="untimed requests per case")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be >= 1 and --warmup >= 0")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    _LOG.setLevel(logging.INFO)
    rows = []
    for case in CASES:
        _LOG.info("measuring %s ...", case.label)
        rows.append((case.label, measure(case, args.requests, args.warmup)))
    sys.stdout.write(
        f"openpi websocket round trip, 127.0.0.1, trivial policy, {args.requests} requests/case; "
        "ratio = remote p50 / in-process policy.infer p50\n"
    )
    sys.stdout.write(format_table(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
