"""The QoS profiles of the topic contract (docs/ARCHITECTURE.md, "Topics").

- SENSOR: cameras and robot state; newest sample wins, never blocks the publisher.
- COMMAND: policy outputs and robot commands; reliable, depth 1 (a queued old command is
  worse than a dropped one: the safety monitor's watchdog holds on staleness instead).
- STATE: status streams consumed by recorders/UIs; reliable with some depth.
- LATCHED: slow-changing status (config, instruction); late joiners get the last value.
- EPISODE_STATUS: /episode/status, one message per step with the observation's stamp; reliable,
  transient local, depth 20 so that a consumer pairing steps with statuses by stamp (the
  arbiter) does not lose the step a publisher's depth-1 history would overwrite. Compatible
  with LATCHED subscribers.
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
SENSOR_RECORDING = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.BEST_EFFORT
)
"""Sensor streams for the recorder: a deep queue, so a burst of disk work (GIL) in the
recorder does not overflow its queue and lose steps (measured: depth 2 lost 2 of 80 steps)."""
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

EPISODE_STATUS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=20,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
