"""health_monitor_node: watches topics' liveness and rate and reports them on /diagnostics.

Subscriptions are raw (no deserialisation), so watching camera streams costs almost nothing.
The algorithm lives in ``pld_nodes.core.health``; this file only wires ROS to it.
"""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from pld_nodes.core.health import HealthMonitorConfig, StreamHealth
from pld_nodes.ros.msg_types import message_class
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config

# Best effort matches both reliable and best-effort publishers.
_WATCH_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)


class HealthMonitorNode(Node):
    def __init__(self) -> None:
        super().__init__("health_monitor")
        self.config: HealthMonitorConfig = declare_config(self, HealthMonitorConfig)
        self._streams = [StreamHealth(e, self.config.window_s) for e in self.config.expectations()]
        for stream, type_name in zip(self._streams, self.config.types, strict=True):
            self.create_subscription(
                message_class(type_name),
                stream.expectation.name,
                lambda _msg, s=stream: s.record(time.monotonic()),
                _WATCH_QOS,
                raw=True,
            )
        self._pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.config.publish_period_s, self._publish)
        self.get_logger().info(f"watching {list(self.config.topics)}")

    def _publish(self) -> None:
        now = time.monotonic()
        out = DiagnosticArray()
        out.header.stamp = self.get_clock().now().to_msg()
        for stream in self._streams:
            rep = stream.report(now)
            out.status.append(
                DiagnosticStatus(
                    level=bytes([int(rep.level)]),
                    name=f"{self.get_name()}: {rep.name}",
                    message=rep.message,
                    hardware_id=rep.name,
                    values=[
                        KeyValue(key="rate_hz", value=f"{rep.rate_hz:.3f}"),
                        KeyValue(key="age_s", value=f"{rep.age_s:.3f}"),
                        KeyValue(key="count", value=str(rep.count)),
                    ],
                )
            )
        self._pub.publish(out)


def main(args: list[str] | None = None) -> int:
    return run_node(HealthMonitorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
