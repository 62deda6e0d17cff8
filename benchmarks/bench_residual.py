"""Residual policy inference latency and learner throughput on this machine (CPU).

Usage: ``python benchmarks/bench_residual.py [--iters N] [--updates U] [--threads T]``

1. Inference, batch 1, what residual_node does per control step (``HotSwapResidual.infer``:
   input validation + deterministic or sampled actor call), next to the built-in base VLA's
   ``infer`` (flow head, state only) as the in-run baseline.
2. Weights hot swap: serialised size and ``actor_from_bytes`` + checks (runs on residual_node's
   worker thread, never in the control path).
3. Learner updates/s at batch 256: SAC update (critic every call, actor + temperature every
   second call), Cal-QL warm-start step (10 and 4 sampled actions), and the RLPD batch draw.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pld_nodes.core.policy.interface import PolicyObservation
from pld_nodes.core.residual.agent import ResidualSAC
from pld_nodes.core.residual.checkpoint import actor_from_bytes, actor_to_bytes
from pld_nodes.core.residual.config import ResidualPolicyConfig, SACConfig
from pld_nodes.core.residual.inference import HotSwapResidual
from pld_nodes.core.residual.networks import ObservationLayout
from pld_nodes.core.residual.replay import TransitionBuffer, sample_mixed
from pld_nodes.core.vla.config import VLAConfig
from pld_nodes.core.vla.model import BuiltinVLA
from pld_nodes.core.vla.policy import BuiltinVLAPolicy

LAYOUT = ObservationLayout(state_dim=23)


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def time_calls(fn, iters: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def trained_looking_blob(version: int = 1) -> bytes:
    agent = ResidualSAC(LAYOUT, ResidualPolicyConfig(), SACConfig())
    for p in agent.actor.trunk.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return actor_to_bytes(agent.actor, version, 0.5)


def synthetic_batch(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    f = np.float32
    return {
        "state": rng.normal(size=(n, 23)).astype(f),
        "base": rng.uniform(-1, 1, (n, 7)).astype(f),
        "action": rng.uniform(-1, 1, (n, 7)).astype(f),
        "reward": (rng.random(n) < 0.05).astype(f),
        "next_state": rng.normal(size=(n, 23)).astype(f),
        "next_base": rng.uniform(-1, 1, (n, 7)).astype(f),
        "done": (rng.random(n) < 0.05).astype(f),
        "mc_return": rng.random(n).astype(f),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    rng = np.random.default_rng(0)
    proprio, objects = rng.normal(size=16), rng.normal(size=7)
    base_action = rng.uniform(-1, 1, 7)

    print(f"## Residual inference, batch 1, CPU, {opts.threads} torch thread(s)\n")
    print("| what | p50 ms | p99 ms | vs base VLA p50 |")
    print("|---|---|---|---|")
    vla = BuiltinVLAPolicy(
        BuiltinVLA(VLAConfig(use_object_state=True, object_state_dim=7)), device="cpu"
    )
    obs = PolicyObservation(proprio=proprio, instruction="lift the cube", object_state=objects)
    base_p50, base_p99 = percentiles(time_calls(lambda: vla.infer(obs), opts.iters // 2))
    rows = []
    for stochastic in (False, True):
        residual = HotSwapResidual(stochastic=stochastic)
        residual.load(trained_looking_blob())
        p50, p99 = percentiles(
            time_calls(lambda r=residual: r.infer(proprio, objects, base_action), opts.iters)
        )
        rows.append((f"residual ({'sampled' if stochastic else 'mean'})", p50, p99))
    for name, p50, p99 in rows:
        print(f"| {name} | {p50:.3f} | {p99:.3f} | {p50 / base_p50:.2f}x |")
    print(f"| base VLA chunk (flow, state only; baseline) | {base_p50:.3f} | {base_p99:.3f} | 1x |")

    blob = trained_looking_blob()
    swap = time_calls(lambda: actor_from_bytes(blob), 50, warmup=5)
    p50, p99 = percentiles(swap)
    print(
        f"\nWeights: {len(blob) / 1e6:.2f} MB per message; parse + check + build: "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (worker thread, off the control path)\n"
    )

    print("## Learner throughput, batch 256\n")
    print("| what | per second | ms each |")
    print("|---|---|---|")
    batch = synthetic_batch(rng, 256)
    for name, sac, fn in (
        ("SAC update (critic; actor every 2nd)", SACConfig(), "update"),
        ("Cal-QL warm-start step, 10 actions", SACConfig(calql_actions=10), "pretrain"),
        ("Cal-QL warm-start step, 4 actions", SACConfig(calql_actions=4), "pretrain"),
    ):
        agent = ResidualSAC(LAYOUT, ResidualPolicyConfig(), sac)
        call = (
            (lambda a=agent: a.update(batch, 0.5))
            if fn == "update"
            else (lambda a=agent: a.pretrain_critic(batch, 0.5))
        )
        n = opts.updates if fn == "update" else max(opts.updates // 5, 10)
        t = time_calls(call, n, warmup=4)
        print(f"| {name} | {1 / np.mean(t):.0f} | {1e3 * np.mean(t):.1f} |")
    offline, online = TransitionBuffer(250_000), TransitionBuffer(250_000)
    offline.add(synthetic_batch(rng, 20_000))
    online.add(synthetic_batch(rng, 100_000))
    t = time_calls(lambda: sample_mixed(offline, online, 256, 0.5, rng), 500)
    print(
        f"| RLPD 50/50 batch draw (20k offline + 100k online) | {1 / np.mean(t):.0f} | "
        f"{1e3 * np.mean(t):.2f} |"
    )


if __name__ == "__main__":
    main()
