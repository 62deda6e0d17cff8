"""The QoS profiles of the topic contract (docs/ARCHITECTURE.md, "Topics").

- SENSOR: cameras and robot state; newest sample wins, never blocks the publisher.
- COMMAND: policy outputs and robot commands; reliable, depth 1 (a queued old command is
  worse than a dropped one: the safety monitor's watchdog holds on staleness instead).
- STATE: status streams consumed by recorders/UIs; reliable with some depth.
- LATCHED: slow-changing status (episode status, config); late joiners get the last value.
"""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

SENSOR = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.BEST_EFFORT
)
COMMAND = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE
)
STATE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE
)
LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
