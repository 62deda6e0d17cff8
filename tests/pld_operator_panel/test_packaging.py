"""The rqt plugin description, the package manifest and the plugin class they name."""

from __future__ import annotations

import importlib
import queue
import xml.etree.ElementTree as ET
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "src" / "pld_operator_panel"


def test_plugin_xml_names_an_existing_plugin_class() -> None:
    lib = ET.parse(PKG / "plugin.xml").getroot()
    assert lib.tag == "library" and lib.get("path") == "pld_operator_panel"
    cls = lib.find("class")
    assert cls is not None and cls.get("base_class_type") == "rqt_gui_py::Plugin"
    module_name, _, attr = cls.get("type", "").rpartition(".")
    module = importlib.import_module(module_name)
    assert attr == module.PLUGIN_CLASS
    assert hasattr(module, attr)  # None here: rqt_gui_py is not installed


def test_package_xml_exports_the_plugin_and_setup_installs_it() -> None:
    root = ET.parse(PKG / "package.xml").getroot()
    assert root.findtext("name") == "pld_operator_panel"
    depends = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "rqt_gui", "rqt_gui_py", "python_qt_binding", "pld_interfaces"} <= depends
    export = root.find("export")
    assert export is not None and export.findtext("build_type") == "ament_python"
    assert export.find("rqt_gui").get("plugin") == "${prefix}/plugin.xml"
    setup = (PKG / "setup.py").read_text()
    assert '"plugin.xml"' in setup and "pld-operator-panel = pld_operator_panel.app:main" in setup
    assert (PKG / "resource" / "pld_operator_panel").is_file()


def test_plugin_class_builds_the_panel_on_rqts_node(qtbot, ros_domain) -> None:
    """With a stand-in for rqt's Plugin base and context, the plugin adds one panel."""
    from pld_operator_panel.ros_bridge import OwnedNode
    from pld_operator_panel.rqt_plugin import _make_plugin_class
    from pld_operator_panel.widget import OperatorPanel

    class FakePlugin:
        def __init__(self, context) -> None:
            self.context = context

        def setObjectName(self, name: str) -> None:
            self.name = name

    ros = OwnedNode("panel_plugin_test", ros_domain)

    class Context:
        node = ros.node

        def __init__(self) -> None:
            self.widgets: list = []

        def serial_number(self) -> int:
            return 2

        def add_widget(self, widget) -> None:
            self.widgets.append(widget)

    try:
        context = Context()
        plugin = _make_plugin_class(FakePlugin)(context)
        (widget,) = context.widgets
        qtbot.addWidget(widget)
        assert isinstance(widget, OperatorPanel) and widget.windowTitle().endswith("(2)")
        assert isinstance(plugin._events, queue.SimpleQueue)
        plugin.shutdown_plugin()
    finally:
        ros.close()
