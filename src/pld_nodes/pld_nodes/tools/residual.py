"""``pld-residual``: PLD stage 1 (residual RL) on the simulator, without ROS.

    pld-residual train --out runs/residual_lift                 # one run, resumable
    pld-residual compare --out runs/stage1_lift                 # PLD vs SAC scratch vs base
    pld-residual compare --quick --out /tmp/stage1              # CI-sized, every stage runs
    pld-residual train --config my.yaml --set sac.calql_steps=500 --set online_env_steps=20000

Both write config.json, metrics.jsonl, TensorBoard logs, checkpoints, the episode store and
``residual_actor.safetensors`` (what residual_node loads); ``compare`` adds report.md and
learning_curves.png. Re-running a command on the same --out resumes it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

LOG = logging.getLogger("pld-residual")


def _set(values: dict[str, Any], assignment: str) -> None:
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise SystemExit(f"--set expects key=value, got {assignment!r}")
    import yaml

    target = values
    *parents, leaf = key.split(".")
    for p in parents:
        target = target.setdefault(p, {})
    target[leaf] = yaml.safe_load(raw)


def _config(opts: argparse.Namespace) -> Any:
    import dataclasses

    import yaml

    from pld_nodes.core.residual.experiment import quick_config
    from pld_nodes.core.residual.trainer import train_config_from_mapping

    values: dict[str, Any] = {}
    if opts.quick:
        q = quick_config()
        values = dataclasses.asdict(q)
    if opts.config:
        loaded = yaml.safe_load(Path(opts.config).read_text()) or {}
        for k, v in loaded.items():
            if isinstance(v, dict):
                values.setdefault(k, {}).update(v)
            else:
                values[k] = v
    for flag in ("task", "base"):
        if getattr(opts, flag):
            values["task" if flag == "task" else "base_checkpoint"] = getattr(opts, flag)
    for assignment in opts.set:
        _set(values, assignment)
    return train_config_from_mapping(values)


def _train(opts: argparse.Namespace) -> int:
    from pld_nodes.core.residual.trainer import ResidualTrainer

    trainer = ResidualTrainer(_config(opts), opts.out, progress=not opts.no_progress)
    try:
        result = trainer.run()
    finally:
        trainer.close()
    LOG.info(
        "final success %.2f over %d episodes after %d env steps (%.1f min); %s",
        result.final_success,
        len(result.final_successes),
        result.env_steps,
        result.wall_s / 60,
        Path(opts.out) / "residual_actor.safetensors",
    )
    return 0


def _compare(opts: argparse.Namespace) -> int:
    from pld_nodes.core.residual.experiment import run_comparison

    arms = run_comparison(
        _config(opts), opts.out, progress=not opts.no_progress, scratch=not opts.no_scratch
    )
    print((Path(opts.out) / "report.md").read_text())
    LOG.info("arms: %s", json.dumps({k: round(v.final_success, 3) for k, v in arms.items()}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pld-residual",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, helptext in (
        ("train", _train, "train one residual (or SAC-from-scratch with --base none)"),
        ("compare", _compare, "PLD residual vs SAC from scratch vs base, with a report"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.set_defaults(func=func)
        p.add_argument("--out", required=True, help="output directory (re-run to resume)")
        p.add_argument("--config", help="YAML with TrainConfig fields (policy:, sac: nested)")
        p.add_argument("--task", help="sim task (default lift)")
        p.add_argument("--base", help="base checkpoint, shipped:<name>, or 'none'")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a field, e.g. sac.calql_steps=500 (repeatable)",
        )
        p.add_argument("--quick", action="store_true", help="CI-sized budgets")
        p.add_argument("--no-progress", action="store_true", help="log lines instead of bars")
        if name == "compare":
            p.add_argument("--no-scratch", action="store_true", help="skip SAC from scratch")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    opts = build_parser().parse_args(argv)
    try:
        return opts.func(opts)
    except (ValueError, OSError) as exc:
        LOG.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
