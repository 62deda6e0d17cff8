"""Episode recording throughput: what recorder_node does per step and per episode, at 30 Hz.

Usage: ``python benchmarks/bench_recorder.py [--seconds S] [--episode-steps N]``

A producer thread emits steps at 30 Hz (observation with 2 cameras + an arbiter step record)
for ``--seconds``; every ``--episode-steps`` steps the episode is committed. Two consumers, run
one after the other on the same data (24 real MuJoCo renders of both Lift cameras, cycled):

- **recorder**: the recorder's path — per-step ``StepSynchronizer`` buffering in the callback,
  then ``build_episode`` + ``BackgroundWriter`` (Zarr, zstd) off the control path;
- **np.savez baseline**: the same buffering, then ``np.savez`` of the episode arrays on the
  calling thread (what a naive recorder would do).

Reported: per-step callback latency p50/p99 (the control-path cost), the time to persist one
episode and its ratio to the episode's duration (< 1 = keeps up), process CPU share, bytes on
disk. Numbers are from one run on this machine.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from pld_nodes.core.episode_store import EpisodeStore
from pld_nodes.core.observation import Observation
from pld_nodes.core.recording import BackgroundWriter, StepRecord, StepSynchronizer, build_episode

RATE_HZ = 30.0
POOLS: dict[tuple[int, int], list[dict[str, np.ndarray]]] = {}
CAMERAS = ("agentview", "robot0_eye_in_hand")


def sim_frames(height: int, width: int, n: int) -> list[dict[str, np.ndarray]]:
    """Real rendered camera frames (MuJoCo, Lift) while the arm moves randomly."""
    from sim_bridge.envs import make_env

    env = make_env("lift", camera_names=CAMERAS, image_size=(height, width), seed=0)
    rng = np.random.default_rng(0)
    try:
        obs, _ = env.reset(seed=0)
        out = []
        for _ in range(n):
            out.append(obs["images"])
            obs, *_ = env.step(rng.uniform(-1, 1, 7))
        return out
    finally:
        env.close()


def run(kind: str, size: tuple[int, int], seconds: float, episode_steps: int, out: Path) -> dict:
    pool = POOLS[size]
    sync = StepSynchronizer()
    store = EpisodeStore.create(out / "store.zarr") if kind == "recorder" else None
    writer = BackgroundWriter(store) if store is not None else None
    step_ms: list[float] = []
    late_ms: list[float] = []
    persist_s: list[float] = []
    proc = psutil.Process()
    cpu0, t0 = proc.cpu_times(), time.perf_counter()
    n_steps = int(seconds * RATE_HZ)
    episode, step = 0, 0
    for k in range(n_steps):
        due = t0 + k / RATE_HZ
        while (now := time.perf_counter()) < due:
            time.sleep(min(due - now, 0.002))
        late_ms.append((time.perf_counter() - due) * 1e3)
        stamp = k * 33_333_333
        obs = Observation(
            stamp_s=stamp * 1e-9,
            proprio=np.zeros(16),
            object_state=np.zeros(7),
            images=pool[k % len(pool)],
        )
        a = np.zeros(7, np.float32)
        rec = StepRecord(stamp, episode, step, "hybrid", 10, int(step >= 10), 0.5, 0.6, a, a, a)
        t = time.perf_counter()
        sync.add_observation(stamp, obs)  # the two subscription callbacks
        sync.add_step(rec)
        step_ms.append((time.perf_counter() - t) * 1e3)
        step += 1
        if step == episode_steps:
            steps, life = sync.pop_episode(episode), {"step": step, "success": True}
            t = time.perf_counter()
            if writer is not None:  # the recorder: arrays are built on the writer thread
                writer.submit_build(
                    lambda s=steps, lc=life: build_episode(s, lc, camera_names=CAMERAS)
                )
            else:
                data, _ = build_episode(steps, life, camera_names=CAMERAS)
                np.savez(out / f"episode_{episode:04d}.npz", **data)
                persist_s.append(time.perf_counter() - t)
            episode, step = episode + 1, 0
    if writer is not None:
        writer.close()
        persist_s = writer.write_s
    wall = time.perf_counter() - t0
    cpu1 = proc.cpu_times()
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
    disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    episode_s = episode_steps / RATE_HZ
    return {
        "step_p50": float(np.percentile(step_ms, 50)),
        "step_p99": float(np.percentile(step_ms, 99)),
        "persist_p50": float(np.percentile(persist_s, 50)) if persist_s else float("nan"),
        "persist_p99": float(np.percentile(persist_s, 99)) if persist_s else float("nan"),
        "ratio": float(np.max(persist_s)) / episode_s if persist_s else float("nan"),
        "cpu": cpu,
        "mb": disk / 1e6,
        "episodes": episode,
        "late_p99": float(np.percentile(late_ms, 99)),
        "late_max": float(np.max(late_ms)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--episode-steps", type=int, default=150)
    opts = parser.parse_args()
    print(
        f"## Recording 2 cameras at {RATE_HZ:.0f} Hz, {opts.seconds:.0f} s per run, "
        f"{opts.episode_steps}-step episodes ({opts.episode_steps / RATE_HZ:.1f} s)\n"
    )
    print(
        "| stream | writer | per-step buffering p50 / p99 ms | persist one episode p50 / p99 s "
        "| worst persist / episode duration | 30 Hz tick lateness p99 / max ms | process CPU "
        "| on disk MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in ((224, 224), (480, 640)):
        POOLS[size] = sim_frames(*size, 24)
        for kind in ("recorder", "np.savez"):
            tmp = Path(tempfile.mkdtemp(prefix="bench_rec_"))
            try:
                r = run(kind, size, opts.seconds, opts.episode_steps, tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            label = "Zarr + zstd, background thread" if kind == "recorder" else "np.savez, inline"
            print(
                f"| 2 x {size[1]}x{size[0]} | {label} | {r['step_p50']:.3f} / {r['step_p99']:.3f} "
                f"| {r['persist_p50']:.2f} / {r['persist_p99']:.2f} | {r['ratio']:.2f} "
                f"| {r['late_p99']:.1f} / {r['late_max']:.0f} | {100 * r['cpu']:.0f} % "
                f"| {r['mb']:.0f} |"
            )


if __name__ == "__main__":
    threading.current_thread().name = "producer"
    main()
