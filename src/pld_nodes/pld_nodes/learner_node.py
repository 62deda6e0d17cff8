"""learner_node: PLD stage 1 learner (SAC / RLPD / Cal-QL) on the episode store.

Runs ``LearnerService`` on a worker thread (training never blocks the executor) and turns its
outputs into ROS: versioned actor weights on /learner/residual_weights (latched, so a
residual_node started later gets the newest) and learner status on /diagnostics. Losses,
Q-values, success rate and xi also go to TensorBoard and the console.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from pld_interfaces.msg import PolicyWeights
from pld_nodes.core.residual.checkpoint import ACTOR_FORMAT, ACTOR_FORMAT_VERSION, sha256_hex
from pld_nodes.core.residual.config import ResidualPolicyConfig, SACConfig
from pld_nodes.core.residual.service import LearnerService, LearnerServiceConfig
from pld_nodes.residual_node import WEIGHTS_TOPIC
from pld_nodes.ros import qos
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config


class _RosLogHandler(logging.Handler):
    """Forwards the core's Python log records to the node's ROS logger."""

    def __init__(self, node: Node) -> None:
        super().__init__(logging.INFO)
        self._logger = node.get_logger()

    def emit(self, record: logging.LogRecord) -> None:
        msg = self.format(record)
        if record.levelno >= logging.ERROR:
            self._logger.error(msg)
        elif record.levelno >= logging.WARNING:
            self._logger.warning(msg)
        else:
            self._logger.info(msg)


class LearnerNode(Node):
    def __init__(self) -> None:
        super().__init__("learner")
        self.config: LearnerServiceConfig = declare_config(self, LearnerServiceConfig)
        policy: ResidualPolicyConfig = declare_config(self, ResidualPolicyConfig, "policy.")
        sac: SACConfig = declare_config(self, SACConfig, "sac.")
        core_log = logging.getLogger("pld_nodes.core.residual")
        core_log.setLevel(logging.INFO)
        core_log.addHandler(_RosLogHandler(self))
        self._weights_pub = self.create_publisher(PolicyWeights, WEIGHTS_TOPIC, qos.LATCHED)
        self._diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.service = LearnerService(self.config, policy, sac, self._on_weights, self._on_status)
        self._thread = threading.Thread(target=self._run, name="learner", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"learning from {self.config.store_path}, checkpoints in {self.config.checkpoint_dir}"
        )

    def _run(self) -> None:
        try:
            self.service.run()
        except Exception as exc:  # surfaced, not swallowed: the learner stops, control goes on
            self.get_logger().fatal(f"learner stopped: {exc!r}")
            raise

    def _on_weights(self, version: int, xi: float, blob: bytes) -> None:
        if not self.context.ok():  # shutting down (SIGINT): the checkpoint still gets written
            return
        msg = PolicyWeights(
            version=version,
            xi=float(xi),
            format=f"{ACTOR_FORMAT}/{ACTOR_FORMAT_VERSION}",
            sha256=sha256_hex(blob),
            data=blob,
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        try:
            self._weights_pub.publish(msg)
        except Exception:  # rclpy's RCLError when the context closed between check and publish
            if self.context.ok():
                raise

    def _on_status(self, status: dict[str, Any]) -> None:
        if not self.context.ok():
            return
        out = DiagnosticArray()
        out.header.stamp = self.get_clock().now().to_msg()
        out.status.append(
            DiagnosticStatus(
                level=DiagnosticStatus.OK,
                name=f"{self.get_name()}: residual learner",
                message=f"v{status['version']}, {status['critic_updates']} updates",
                hardware_id="learner",
                values=[KeyValue(key=k, value=f"{v}") for k, v in status.items()],
            )
        )
        self._diag.publish(out)

    def destroy_node(self) -> None:
        self.service.stop_event.set()
        self._thread.join(timeout=30.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(LearnerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
