"""The .launch.py files build the same node list as pld-launch (checked with stand-ins for the
`launch`/`launch_ros` APIs, which only a system ROS 2 install provides)."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pld_bringup import available_graphs, find_graph, share_dir

STANDINS = Path(__file__).resolve().parent.parent / "fixtures" / "launch_standins"


@pytest.fixture
def launch_api(monkeypatch):
    monkeypatch.syspath_prepend(str(STANDINS))
    for name in [
        m for m in sys.modules if m == "launch" or m.startswith(("launch.", "launch_ros"))
    ]:
        monkeypatch.delitem(sys.modules, name)
    yield


def load_launch_file(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


@pytest.mark.parametrize("graph", sorted(available_graphs()))
def test_launch_file_matches_graph(launch_api, graph: str) -> None:
    description = load_launch_file(share_dir() / "launch" / f"{graph}.launch.py")
    declared = {e.name: e.default_value for e in description.entities if hasattr(e, "name")}
    spec = find_graph(graph)
    assert declared == {a.name: a.default for a in spec.arguments.values()}
    opaque = description.entities[-1]
    context = SimpleNamespace(launch_configurations=dict(declared))
    nodes = opaque.function(context)
    expected = spec.resolve({}, share_dir())
    assert [n.kwargs["name"] for n in nodes] == [n.name for n in expected]
    for node, want in zip(nodes, expected, strict=True):
        kwargs = dict(node.kwargs)
        on_exit = kwargs.pop("on_exit")
        assert kwargs == want.launch_ros_kwargs()
        assert (on_exit is not None) == want.required
