"""Throughput of the simulated Lift env under different rendering loads.

Usage: ``python benchmarks/bench_sim_env.py [--steps N] [--task lift]``

Prints env steps/s and p50/p99 step latency so rendering costs can be compared before choosing
camera count and resolution for RL (the policy loop runs at 20 Hz on the real robot).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from sim_bridge.envs import make_env

_LOG = logging.getLogger("bench_sim_env")
CAMERAS = ("agentview", "robot0_eye_in_hand")


@dataclass(frozen=True)
class Case:
    """One benchmark configuration."""

    label: str
    config: dict[str, Any]


CASES = (
    Case("physics only (no render)", {"render": False}),
    Case("2 cams 128x128 fast", {"camera_names": CAMERAS, "image_size": (128, 128)}),
    Case(
        "2 cams 128x128 full",
        {"camera_names": CAMERAS, "image_size": (128, 128), "fast_render": False},
    ),
    Case("2 cams 224x224 fast", {"camera_names": CAMERAS, "image_size": (224, 224)}),
    Case(
        "2 cams 224x224 full",
        {"camera_names": CAMERAS, "image_size": (224, 224), "fast_render": False},
    ),
)


def measure(task: str, case: Case, steps: int, warmup: int = 5) -> dict[str, float]:
    """Step a seeded env with random actions; resets on episode end are excluded from timing."""
    env = make_env(task, seed=0, **case.config)
    rng = np.random.default_rng(0)
    try:
        env.reset(seed=0)
        for _ in range(warmup):
            env.step(env.action_space.sample())
        latencies = np.empty(steps)
        for i in range(steps):
            action = rng.uniform(-1.0, 1.0, 7).astype(np.float32)
            start = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            latencies[i] = time.perf_counter() - start
            if terminated or truncated:
                env.reset()
    finally:
        env.close()
    return {
        "steps_per_s": steps / float(latencies.sum()),
        "p50_ms": 1e3 * float(np.percentile(latencies, 50)),
        "p99_ms": 1e3 * float(np.percentile(latencies, 99)),
    }


def format_table(rows: list[tuple[str, dict[str, float]]]) -> str:
    """Plain-text table, one row per case."""
    header = f"{'configuration':<28} {'steps/s':>9} {'p50 ms':>9} {'p99 ms':>9}"
    lines = [header, "-" * len(header)]
    for label, r in rows:
        lines.append(
            f"{label:<28} {r['steps_per_s']:>9.1f} {r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="timed steps per configuration")
    parser.add_argument("--task", default="lift", help="registered task name")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    _LOG.setLevel(logging.INFO)
    rows = []
    for case in CASES:
        _LOG.info("measuring %s ...", case.label)
        rows.append((case.label, measure(args.task, case, args.steps)))
    sys.stdout.write(f"task={args.task} steps={args.steps} (1 control step = 50 ms sim time)\n")
    sys.stdout.write(format_table(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
