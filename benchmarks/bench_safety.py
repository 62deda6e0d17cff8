"""Safety rules' cost per control step on this machine (the core; the node adds the ROS hop).

Usage: ``python benchmarks/bench_safety.py [--iters N]``

Rows: ``validate_action`` alone (the malformed-input check every command path already pays; the
in-run baseline), ``SafetyMonitor.filter`` on commands that pass unchanged, on commands that are
capped and clipped into the workspace, and on malformed commands (held). p50/p99 in µs and the
ratio to the baseline's p50.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pld_nodes.core.actions import validate_action
from pld_nodes.core.safety import RobotState, SafetyLimits, SafetyMonitor

LIMITS = SafetyLimits(
    workspace_min=(0.3, -0.3, 0.02), workspace_max=(0.7, 0.3, 0.5),
    translation_scale_m=0.05, rotation_scale_rad=0.5,
    max_translation_per_step_m=0.02, max_rotation_per_step_rad=0.1, max_ee_speed_mps=0.5,
    joint_lower=(-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973),
    joint_upper=(2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973),
    joint_margin_rad=0.05, max_force_n=30.0, max_torque_nm=10.0,
)  # fmt: skip
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


def timed(fn, commands: np.ndarray) -> np.ndarray:
    out = np.empty(len(commands))
    for i, c in enumerate(commands):
        t0 = time.perf_counter()
        fn(c)
        out[i] = time.perf_counter() - t0
    return out * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20_000)
    n = parser.parse_args().iters
    rng = np.random.default_rng(0)
    monitor = SafetyMonitor(LIMITS)
    monitor.update_state(RobotState(0.0, np.array([0.5, 0.0, 0.2]), HOME))
    small = rng.uniform(-0.3, 0.3, (n, 7))
    large = rng.uniform(-1.0, 1.0, (n, 7))
    large[:, 0] = 1.0  # always capped, towards the +x face
    bad = small.copy()
    bad[:, 3] = np.nan
    rows = {
        "validate_action (baseline)": timed(validate_action, small),
        "filter: passes unchanged": timed(lambda c: monitor.filter(c, 0.0, 0.0), small),
        "filter: capped + workspace": timed(lambda c: monitor.filter(c, 0.0, 0.0), large),
        "filter: malformed → hold": timed(lambda c: monitor.filter(c, 0.0, 0.0), bad),
    }
    base = float(np.percentile(rows["validate_action (baseline)"], 50))
    print(f"{'path':32s} {'p50 µs':>8s} {'p99 µs':>8s} {'p50 / baseline':>15s}")
    for name, us in rows.items():
        p50, p99 = np.percentile(us, [50, 99])
        print(f"{name:32s} {p50:8.1f} {p99:8.1f} {p50 / base:14.1f}x")


if __name__ == "__main__":
    main()
