"""The panel as an rqt plugin (plugin.xml names ``OperatorPanelPlugin``).

rqt provides the node and spins it; the plugin only builds the bridge on that node and the
widget. ``rqt_gui_py`` exists only in a ROS installation, so without it this module still
imports and ``OperatorPanelPlugin`` is None (the standalone app covers that case).
"""

from __future__ import annotations

import queue
from typing import Any

try:  # pragma: no cover - only in a ROS installation with rqt
    from rqt_gui_py.plugin import Plugin
except ImportError:
    Plugin = None

PLUGIN_CLASS = "OperatorPanelPlugin"


def _make_plugin_class(base: type) -> type:
    class OperatorPanelPlugin(base):  # type: ignore[misc, valid-type]
        """rqt entry point: one panel per plugin instance, on rqt's node."""

        def __init__(self, context: Any) -> None:
            super().__init__(context)
            from .ros_bridge import PanelBridge
            from .widget import OperatorPanel

            self.setObjectName("PldOperatorPanel")
            self._events: queue.SimpleQueue = queue.SimpleQueue()
            self._bridge = PanelBridge(context.node, self._events)
            self._widget = OperatorPanel(self._bridge, self._events)
            if context.serial_number() > 1:
                title = f"{self._widget.windowTitle()} ({context.serial_number()})"
                self._widget.setWindowTitle(title)
            context.add_widget(self._widget)

        def shutdown_plugin(self) -> None:
            self._widget.shutdown()

        def save_settings(self, plugin_settings: Any, instance_settings: Any) -> None:
            """Nothing to save: everything shown comes from the stack (topics and store)."""

        def restore_settings(self, plugin_settings: Any, instance_settings: Any) -> None:
            """Nothing to restore (see save_settings)."""

    return OperatorPanelPlugin


OperatorPanelPlugin = _make_plugin_class(Plugin) if Plugin is not None else None
