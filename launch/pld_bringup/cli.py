"""``pld-launch``: run a graph without ``ros2 launch`` (CI, pip installs).

pld-launch sim                      # graphs/sim.yaml with default arguments
pld-launch sim task_config:=my.yaml # set a launch argument, as with ros2 launch
pld-launch --list                   # graphs and their arguments
pld-launch sim --print              # show the command of each node, start nothing
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from pld_bringup import available_graphs, find_graph, share_dir
from pld_bringup.graph import GraphError
from pld_bringup.process_launcher import GraphLauncher

DEFAULT_PROFILE = "config/fastdds.xml"


def parse_launch_arguments(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise GraphError(f"launch argument {item!r} is not of the form name:=value")
        values[name] = value
    return values


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _list_graphs() -> None:
    for name, path in available_graphs().items():
        graph = find_graph(str(path))
        print(f"{name}: {graph.description}")
        for arg in graph.arguments.values():
            default = "(required)" if arg.default is None else f"default {arg.default!r}"
            print(f"    {arg.name}:=  {default}  {arg.description}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pld-launch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("graph", nargs="?", help="graph name (see --list) or path to a .yaml")
    parser.add_argument("arguments", nargs="*", help="launch arguments as name:=value")
    parser.add_argument("--list", action="store_true", help="list graphs and their arguments")
    parser.add_argument("--print", action="store_true", help="print node commands and exit")
    parser.add_argument("--log-dir", type=Path, help="also write each node's output to DIR")
    parser.add_argument("--duration", type=float, help="stop the graph after this many seconds")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[launcher] %(levelname)s %(message)s")
    try:
        if opts.list:
            _list_graphs()
            return 0
        if not opts.graph:
            parser.error("a graph name or file is required (see --list)")
        graph = find_graph(opts.graph)
        nodes = graph.resolve(parse_launch_arguments(opts.arguments), share_dir())
        env = dict(os.environ)
        env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(share_dir() / DEFAULT_PROFILE))
        launcher = GraphLauncher(nodes, env=env, log_dir=opts.log_dir)
    except GraphError as exc:
        print(f"pld-launch: error: {exc}", file=sys.stderr)
        return 2
    if opts.print:
        for name, cmd in launcher.commands().items():
            print(f"{name}: {' '.join(cmd)}")
        return 0
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the graph like Ctrl-C
    launcher.start()
    try:
        code = launcher.wait(opts.duration)
    except KeyboardInterrupt:
        code = 0
    launcher.stop()
    return 0 if code is None else code


if __name__ == "__main__":
    raise SystemExit(main())
