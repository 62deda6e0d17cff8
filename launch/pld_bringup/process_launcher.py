"""Start a graph's nodes as processes, the way ``ros2 launch`` would, where ROS launch is absent.

Used by CI, pip installs and the test harness. Each node runs as ``python -c <entry point>
--ros-args ...`` in its own process session; output lines are prefixed with the node name; a
node that dies is reported with its exit code and last lines; a dead *required* node stops the
graph; stopping escalates SIGINT -> SIGTERM -> SIGKILL.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.metadata
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pld_bringup.graph import GraphError, NodeLaunch

LOG = logging.getLogger("pld_bringup.launcher")
EXIT_MEANINGS = {0: "clean exit", 1: "unhandled error", 2: "configuration error"}


@dataclass(frozen=True)
class NodeExit:
    """A node process that ended, and how."""

    name: str
    returncode: int
    required: bool
    tail: tuple[str, ...]

    def describe(self) -> str:
        if self.returncode < 0:
            try:
                return f"killed by {signal.Signals(-self.returncode).name}"
            except ValueError:
                return f"killed by signal {-self.returncode}"
        meaning = EXIT_MEANINGS.get(self.returncode, "error")
        return f"exit code {self.returncode} ({meaning})"


def _canonical(name: str) -> str:
    return name.lower().replace("-", "_")


def resolve_command(node: NodeLaunch) -> list[str]:
    """The command that runs ``node.executable`` of ``node.package`` in this Python environment."""
    try:
        dist = importlib.metadata.distribution(node.package)
    except importlib.metadata.PackageNotFoundError:
        raise GraphError(
            f"node {node.name!r}: package {node.package!r} is not installed in this Python "
            f"environment ({sys.prefix}); run scripts/setup.sh"
        ) from None
    scripts = {ep.name: ep for ep in dist.entry_points if ep.group == "console_scripts"}
    if node.executable not in scripts:
        raise GraphError(
            f"node {node.name!r}: package {node.package!r} has no executable "
            f"{node.executable!r}; it has {sorted(scripts) or 'none'}"
        )
    ep = scripts[node.executable]
    boot = (
        f"import sys; from {ep.module} import {ep.attr} as main; "
        f"sys.argv[0] = {node.executable!r}; sys.exit(main())"
    )
    return [sys.executable, "-c", boot]


@dataclass
class _Running:
    launch: NodeLaunch
    process: subprocess.Popen[str]
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    reader: threading.Thread | None = None
    reported: bool = False


class GraphLauncher:
    """Runs a list of :class:`NodeLaunch` as child processes. Use as a context manager."""

    def __init__(
        self,
        nodes: list[NodeLaunch],
        env: dict[str, str] | None = None,
        sink: Callable[[str], None] | None = None,
        log_dir: Path | None = None,
        sigint_timeout_s: float = 5.0,
        sigterm_timeout_s: float = 3.0,
    ) -> None:
        if not nodes:
            raise GraphError("the graph has no enabled nodes to launch")
        names = [n.fully_qualified_name for n in nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise GraphError(f"duplicate node names in graph: {dupes}")
        self._nodes = nodes
        self._commands = {n.name: resolve_command(n) for n in nodes}  # fail before starting any
        self._env = dict(os.environ if env is None else env)
        self._sink = sink or (lambda line: print(line, flush=True))
        self._log_dir = log_dir
        self._sigint_timeout_s = sigint_timeout_s
        self._sigterm_timeout_s = sigterm_timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix="pld_launch_")
        self._running: dict[str, _Running] = {}
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> GraphLauncher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def commands(self) -> dict[str, list[str]]:
        """Full command line of each node (for ``--print`` and tests)."""
        return {
            n.name: self._commands[n.name] + n.ros_args(self._overrides_path(n))
            for n in self._nodes
        }

    def start(self) -> None:
        env = self._child_env()
        for node, argv in zip(self._nodes, self.commands().values(), strict=True):
            if node.overrides:
                self._overrides_path(node).write_text(node.overrides_yaml())
            proc = subprocess.Popen(
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
                errors="replace",
            )
            run = _Running(node, proc)
            run.reader = threading.Thread(target=self._pump, args=(run,), daemon=True)
            run.reader.start()
            self._running[node.name] = run
            LOG.info("started %s (pid %d)", node.fully_qualified_name, proc.pid)

    def _overrides_path(self, node: NodeLaunch) -> Path | None:
        return Path(self._tmp.name) / f"{node.name}.overrides.yaml" if node.overrides else None

    def _child_env(self) -> dict[str, str]:
        env = dict(self._env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "0")
        env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
        return env

    def _pump(self, run: _Running) -> None:
        assert run.process.stdout is not None
        log_file = None
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            log_file = open(self._log_dir / f"{run.launch.name}.log", "a")  # noqa: SIM115
        try:
            for line in run.process.stdout:
                line = line.rstrip("\n")
                run.tail.append(line)
                self._sink(f"[{run.launch.name}] {line}")
                if log_file:
                    log_file.write(line + "\n")
                    log_file.flush()
        finally:
            if log_file:
                log_file.close()

    # -- supervision -----------------------------------------------------------------------
    def running(self) -> list[str]:
        return [name for name, r in self._running.items() if r.process.poll() is None]

    def pid(self, name: str) -> int:
        return self._running[name].process.pid

    def poll(self) -> list[NodeExit]:
        """Nodes that ended since the last call (each reported once)."""
        exits = []
        for run in self._running.values():
            code = run.process.poll()
            if code is None or run.reported:
                continue
            run.reported = True
            if run.reader is not None:
                run.reader.join(timeout=2.0)  # collect its last lines
            exits.append(NodeExit(run.launch.name, code, run.launch.required, tuple(run.tail)))
        return exits

    def report(self, ended: NodeExit) -> None:
        if self._stopping:
            LOG.info("node %r stopped: %s", ended.name, ended.describe())
            return
        LOG.error(
            "node %r died: %s%s",
            ended.name,
            ended.describe(),
            " (required: stopping the graph)" if ended.required else "",
        )
        for line in ended.tail[-10:]:
            LOG.error("  %s| %s", ended.name, line)

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Supervise until a required node dies (1), all nodes end (0 if all clean, else 1),
        or ``timeout_s`` passes (None, graph still running)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        failures = 0
        while True:
            for ended in self.poll():
                self.report(ended)
                failures += ended.returncode != 0
                if ended.required and not self._stopping:
                    self.stop()
                    return 1
            if not self.running():
                self.poll()
                return 1 if failures else 0
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def stop(self) -> dict[str, int]:
        """SIGINT every node, then SIGTERM, then SIGKILL what is left; return exit codes."""
        self._stopping = True
        for sig, timeout in (
            (signal.SIGINT, self._sigint_timeout_s),
            (signal.SIGTERM, self._sigterm_timeout_s),
            (signal.SIGKILL, 5.0),
        ):
            alive = [r for r in self._running.values() if r.process.poll() is None]
            if not alive:
                break
            if sig != signal.SIGINT:
                LOG.warning(
                    "%s did not stop in time: sending %s", [r.launch.name for r in alive], sig.name
                )
            for run in alive:
                _signal_group(run.process, sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(r.process.poll() is None for r in alive):
                time.sleep(0.02)
        for ended in self.poll():
            self.report(ended)
        self._tmp.cleanup()
        return {name: r.process.returncode for name, r in self._running.items()}


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, sig)
