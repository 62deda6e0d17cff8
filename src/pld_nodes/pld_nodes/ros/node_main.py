"""The one ``main()`` every node uses: init, build, spin, and exit codes that mean something.

Exit codes: 0 clean shutdown, 2 configuration error (message logged, no traceback),
1 unexpected exception. The process launcher reports them per node.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node

from pld_nodes.core.config import ConfigError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG_ERROR = 2


def run_node(
    factory: Callable[[], Node], args: Sequence[str] | None = None, threads: int = 1
) -> int:
    """Create the node with ``factory`` and spin it until shutdown; return the exit code.

    ``threads=1`` (the default) runs every callback on the calling thread. Callbacks must be
    short; slow work (inference) belongs on a worker thread of the node. This is also required
    by nodes that own thread-bound resources such as an OpenGL context (the sim bridge's
    renderer). Measured: with rclpy's MultiThreadedExecutor, vla_node's inference worker was
    starved to ~2 s per step; with the single-threaded executor a lockstep step takes ~5 ms.
    """
    rclpy.init(args=list(sys.argv if args is None else args))
    node: Node | None = None
    try:
        node = factory()
        executor: Executor = (
            SingleThreadedExecutor() if threads == 1 else MultiThreadedExecutor(num_threads=threads)
        )
        executor.add_node(node)
        executor.spin()
        return EXIT_OK
    except ConfigError as exc:
        rclpy.logging.get_logger("pld").fatal(f"configuration error: {exc}")
        return EXIT_CONFIG_ERROR
    except (KeyboardInterrupt, ExternalShutdownException):
        return EXIT_OK
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
