"""``pld-compare``: which data should the VLA be distilled from? (the paper's comparison, sim)

    pld-compare --run runs/pld --out runs/pld/compare            # 100 episodes per source
    pld-compare --run runs/smoke --out runs/smoke/compare --quick

Needs a finished ``pld-run`` directory (its residual specialist, its collected hybrid episodes
and its base evaluation). Distils the same base from (a) PLD hybrid rollouts, (b) residual
from step 0, (c) scripted-expert demos, (d) the base's own successes — equal episode counts,
same SFT schedule — and evaluates each on the same seeds. Writes report.md + sources.png;
re-running resumes per source.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from pld_nodes.core.pipeline.comparison import CompareConfig, run_comparison

    p = argparse.ArgumentParser(
        prog="pld-compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run", required=True, help="a finished pld-run directory")
    p.add_argument("--out", required=True, help="comparison directory (re-run to resume)")
    p.add_argument("--episodes", type=int, default=100, help="successful episodes per source")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--quick", action="store_true", help="2 episodes per source, 3 eval episodes")
    p.add_argument("--no-progress", action="store_true")
    opts = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [pld-compare] %(message)s")
    cfg = (
        CompareConfig(episodes=2, eval_episodes=3)
        if opts.quick
        else CompareConfig(episodes=opts.episodes, eval_episodes=opts.eval_episodes)
    )
    if not (Path(opts.run) / "config.json").exists():
        print(f"pld-compare: error: {opts.run} is not a pld-run directory", file=sys.stderr)
        return 2
    report = run_comparison(opts.run, opts.out, cfg, progress=not opts.no_progress)
    print(report.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
