"""Operator panel fixtures: offscreen Qt, one shared operator-mode sim graph, panel factory."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import
os.environ.setdefault("MUJOCO_GL", "egl")

import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pld_bringup import find_graph, share_dir
from pld_bringup.process_launcher import GraphLauncher
from pld_bringup.testing import RosProbe

GRAPH = Path(__file__).resolve().parent.parent / "fixtures" / "graphs" / "operator_panel.yaml"


@dataclass
class PanelGraph:
    domain: int
    store: Path
    launcher: GraphLauncher


@pytest.fixture(scope="module")
def panel_graph(
    ros_session: dict[str, str], domain_allocator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PanelGraph]:
    """The operator-mode sim graph, shared by a module's tests (startup costs ~15 s)."""
    domain = domain_allocator.allocate()
    store = tmp_path_factory.mktemp("panel") / "episodes.zarr"
    nodes = find_graph(str(GRAPH)).resolve({"store": str(store)}, share_dir())
    env = dict(os.environ) | {"ROS_DOMAIN_ID": str(domain)}
    launcher = GraphLauncher(nodes, env=env)
    launcher.start()
    # Wait until the sim streams its status (as the node tests do) before the first start.
    probe = RosProbe(domain, "panel_graph_probe")
    try:
        deadline = time.monotonic() + 90
        while not probe.node.count_publishers("/episode/status"):
            assert time.monotonic() < deadline, "the sim never came up"
            time.sleep(0.2)
        time.sleep(2.0)
    finally:
        probe.close()
    yield PanelGraph(domain, store, launcher)
    launcher.stop()


@pytest.fixture
def open_panel(qtbot) -> Iterator[Callable[..., object]]:
    """Factory: a panel with its own rclpy node in ``domain``; closed at teardown."""
    from pld_operator_panel.model import HealthRules, PanelModel
    from pld_operator_panel.ros_bridge import OwnedNode, PanelBridge
    from pld_operator_panel.widget import OperatorPanel

    opened: list[tuple[object, OwnedNode]] = []

    def make(domain: int, store: str = "", confirm=None, rules: HealthRules | None = None):
        ros = OwnedNode("operator_panel", domain)
        events: queue.SimpleQueue = queue.SimpleQueue()
        kwargs = {} if confirm is None else {"confirm": confirm}
        panel = OperatorPanel(
            PanelBridge(ros.node, events), events, store_path=store,
            model=PanelModel(rules), **kwargs,
        )  # fmt: skip
        qtbot.addWidget(panel)
        panel.resize(1200, 760)
        panel.show()
        opened.append((panel, ros))
        return panel

    yield make
    for panel, ros in opened:
        panel.shutdown()
        ros.close()
