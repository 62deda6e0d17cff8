"""``pld-run``: the main job — the whole PLD loop on the simulated robot, with a report.

    pld-run                                  # Lift, shipped base, full budgets (~35 min, 2 cores)
    pld-run --quick --out runs/smoke         # every stage with tiny budgets (~1 min)
    pld-run --successes 50 --alpha 0.6 --set distill.steps=3000 --set learn.seed=1
    pld-run --out runs/x                     # after an interruption: resumes where it stopped

Stages: 1. Probe/Learn — the frozen base probes the task, a residual specialist is trained with
SAC + RLPD + Cal-QL warm start (single-process trainer on the sim, the same core code the
learner_node runs); 2. Collect — hybrid rollouts (base for T_base ~ U{0..αT} steps, then base +
residual) through the ROS graph: vla, residual, arbiter, episode manager and recorder nodes
write the Zarr store; 3. Distill — the VLA fine-tuned on the successful rollouts with its own
SFT loss; 4. Evaluate — base, specialist and distilled base on the same seeded episodes.
Writes ``<out>/report.md`` with plots; re-running the same command resumes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

LOG = logging.getLogger("pld_bringup.pipeline")


def _set(values: dict[str, Any], assignment: str) -> None:
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ValueError(f"--set wants section.key=value, got {assignment!r}")
    *path, leaf = key.split(".")
    node = values
    for part in path:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(raw)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pld-run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="", help="run directory (default runs/pld_<time>)")
    p.add_argument("--quick", action="store_true", help="CI-sized budgets (numbers mean nothing)")
    p.add_argument("--task", help="sim task (default lift)")
    p.add_argument(
        "--base", help="base VLA checkpoint or shipped:<name> (default shipped:lift_flow)"
    )
    p.add_argument(
        "--collect-backend",
        choices=("ros", "inprocess"),
        help="ros (default): the sim_pld graph records; inprocess: same core code, no ROS",
    )
    p.add_argument("--successes", type=int, help="successful hybrid episodes to distil from")
    p.add_argument("--alpha", type=float, help="T_base ~ U{0..floor(alpha*T)}; 0 = residual only")
    p.add_argument("--eval-episodes", type=int, help="evaluation episodes per policy")
    p.add_argument("--config", help="YAML with sections learn/collect/distill/evaluate")
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a field"
    )
    p.add_argument("--no-progress", action="store_true", help="log lines instead of bars")
    return p


def config_from_args(opts: argparse.Namespace):
    from pld_nodes.core.pipeline.config import (
        PipelineConfig,
        pipeline_config_from_mapping,
        quick_pipeline_config,
    )

    values: dict[str, Any] = {}
    if opts.config:
        values = yaml.safe_load(Path(opts.config).read_text()) or {}
    if opts.task:
        values.setdefault("learn", {})["task"] = opts.task
    if opts.base:
        values.setdefault("learn", {})["base_checkpoint"] = opts.base
        values.setdefault("distill", {})["base_checkpoint"] = opts.base
    for key, section, field in (
        ("collect_backend", "collect", "backend"),
        ("successes", "collect", "successes"),
        ("alpha", "collect", "alpha"),
        ("eval_episodes", "evaluate", "episodes"),
    ):
        if getattr(opts, key) is not None:
            values.setdefault(section, {})[field] = getattr(opts, key)
    for assignment in opts.set:
        _set(values, assignment)
    base = quick_pipeline_config() if opts.quick else PipelineConfig()
    return pipeline_config_from_mapping(values, base)


def _ros_env() -> None:
    from pld_bringup import share_dir

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(share_dir() / "config/fastdds.xml"))


def main(argv: list[str] | None = None) -> int:
    from pld_nodes.core.config import ConfigError
    from pld_nodes.core.pipeline.run import Pipeline

    opts = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [pld-run] %(name)s: %(message)s")
    try:
        cfg = config_from_args(opts)
    except (ConfigError, ValueError, OSError) as err:
        print(f"pld-run: error: {err}", file=sys.stderr)
        return 2
    out = Path(opts.out or Path("runs") / datetime.now().strftime("pld_%Y%m%d-%H%M%S"))
    collector = None
    if cfg.collect.backend == "ros":
        from pld_bringup.ros_collect import RosCollector

        _ros_env()
        collector = RosCollector(out / "collect", batch_episodes=cfg.collect.batch_episodes)
    try:
        pipeline = Pipeline(cfg, out, collector=collector, progress=not opts.no_progress)
    except ConfigError as err:
        print(f"pld-run: error: {err}", file=sys.stderr)
        return 2
    report = pipeline.run()
    LOG.info("report: %s", report)
    print((report).read_text().split("## Stages")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
