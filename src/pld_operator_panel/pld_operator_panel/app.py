"""``pld-operator-panel``: the panel as a standalone window with its own rclpy node.

Shuts down cleanly on window close and on SIGINT/SIGTERM (Qt's event loop does not run Python
signal handlers by itself, so a timer lets Python check for signals).
"""

from __future__ import annotations

import argparse
import queue
import signal
import sys
from collections.abc import Sequence

from .qt import QtCore, QtWidgets


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pld-operator-panel", description=__doc__)
    p.add_argument("--store", default="", help="episode store (zarr); default: the recorder's")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: env)")
    p.add_argument("--stale-after", type=float, default=3.0, help="heartbeat age that is stale")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .model import HealthRules, PanelModel
    from .ros_bridge import OwnedNode, PanelBridge
    from .widget import OperatorPanel

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    ros = OwnedNode(domain_id=args.domain_id)
    events: queue.SimpleQueue = queue.SimpleQueue()
    bridge = PanelBridge(ros.node, events)
    model = PanelModel(HealthRules(stale_after_s=args.stale_after))
    panel = OperatorPanel(bridge, events, store_path=args.store, model=model)
    panel.resize(1200, 760)
    panel.show()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_a: app.quit())
    tick = QtCore.QTimer()
    tick.timeout.connect(lambda: None)  # wakes the interpreter so signal handlers run
    tick.start(200)
    try:
        return int(app.exec_())
    finally:
        panel.shutdown()
        ros.close()


if __name__ == "__main__":
    raise SystemExit(main())
