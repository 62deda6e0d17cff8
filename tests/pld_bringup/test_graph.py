"""The graph description: parsing, substitution, and the --ros-args both launchers use."""

from pathlib import Path

import pytest
import yaml

from pld_bringup import available_graphs, find_graph, share_dir
from pld_bringup.graph import GraphError, NodeLaunch, load_graph

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "graphs"


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


def test_fixture_graph_resolves_with_defaults_and_overrides() -> None:
    graph = load_graph(FIXTURES / "monitors.yaml")
    nodes = {n.name: n for n in graph.resolve({"period": "0.25"}, share_dir())}
    a, b = nodes["monitor_a"], nodes["monitor_b"]
    assert a.overrides == {"publish_period_s": 0.25}  # typed by YAML, not the string "0.25"
    assert a.parameter_files == ((FIXTURES / "monitor_a.yaml").resolve(),)
    assert b.namespace == "watchers" and b.fully_qualified_name == "/watchers/monitor_b"
    assert b.required is True
    assert graph.resolve({"b_required": "false"}, share_dir())[1].required is False


def test_ros_args_match_what_ros2_launch_passes(tmp_path: Path) -> None:
    node = NodeLaunch(
        name="vla",
        package="pld_nodes",
        executable="vla_node",
        namespace="/arm1",
        parameter_files=(Path("/cfg/a.yaml"), Path("/cfg/b.yaml")),
        overrides={"rate_hz": 10.0},
        remappings=(("/in", "/cameras/wrist"),),
    )
    args = node.ros_args(tmp_path / "o.yaml")
    assert args == [
        "--ros-args",
        "-r",
        "__node:=vla",
        "-r",
        "__ns:=/arm1",
        "--params-file",
        "/cfg/a.yaml",
        "--params-file",
        "/cfg/b.yaml",
        "--params-file",
        str(tmp_path / "o.yaml"),
        "-r",
        "/in:=/cameras/wrist",
    ]
    assert yaml.safe_load(node.overrides_yaml()) == {"/**": {"ros__parameters": {"rate_hz": 10.0}}}
    kwargs = node.launch_ros_kwargs()
    assert kwargs["parameters"] == ["/cfg/a.yaml", "/cfg/b.yaml", {"rate_hz": 10.0}]
    assert kwargs["remappings"] == [("/in", "/cameras/wrist")]
    assert (kwargs["name"], kwargs["namespace"]) == ("vla", "/arm1")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("nodes: [1, 2", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping with 'nodes'"),
        ("nodes: {}\n", "'nodes' must be a non-empty mapping"),
        ("nodez: {a: {}}\n", "unknown top-level key(s) ['nodez']"),
        ("nodes: {a: {package: p}}\n", "needs a non-empty 'executable'"),
        ("nodes: {a: {package: p, executable: e, param: []}}\n", "unknown key(s) ['param']"),
        ("nodes: {'bad-name': {package: p, executable: e}}\n", "not a valid ROS node name"),
    ],
)
def test_bad_graph_files_fail_with_a_clear_message(
    tmp_path: Path, content: str, fragment: str
) -> None:
    with pytest.raises(GraphError, match=None) as info:
        load_graph(write(tmp_path, "g.yaml", content))
    assert fragment in str(info.value)
    assert "g.yaml" in str(info.value)


def test_missing_graph_file() -> None:
    with pytest.raises(GraphError, match="does not exist"):
        load_graph(Path("/nonexistent/graph.yaml"))


def test_unknown_graph_name_lists_the_available_ones() -> None:
    with pytest.raises(GraphError, match="unknown graph 'nope'; available:"):
        find_graph("nope")


@pytest.mark.parametrize(
    ("node_extra", "values", "fragment"),
    [
        ("parameters: [missing.yaml]", {}, "parameter file missing.yaml not found"),
        ("parameters: [bad.yaml]", {}, "is not valid YAML"),
        ("parameters: [plain.yaml]", {}, "is not a ROS 2 parameter file"),
        ("overrides: {x: $(arg nope)}", {}, "$(arg nope) is not a declared argument"),
        ("enabled: maybe", {}, "enabled must be true or false"),
        ("", {"rate": "1"}, "unknown argument(s) ['rate']"),
    ],
)
def test_bad_inputs_at_resolve_time(
    tmp_path: Path, node_extra: str, values: dict, fragment: str
) -> None:
    write(tmp_path, "bad.yaml", "a: [1, 2\n")
    write(tmp_path, "plain.yaml", "rate: 3\n")
    graph_file = write(
        tmp_path, "g.yaml", f"nodes:\n  n:\n    package: p\n    executable: e\n    {node_extra}\n"
    )
    with pytest.raises(GraphError) as info:
        load_graph(graph_file).resolve(values, tmp_path / "share")
    assert fragment in str(info.value)


def test_required_argument_must_be_given(tmp_path: Path) -> None:
    graph = load_graph(
        write(
            tmp_path,
            "g.yaml",
            "arguments: {cfg: {description: x}}\nnodes: {n: {package: p, executable: e}}\n",
        )
    )
    with pytest.raises(GraphError, match=r"required argument\(s\) not set: cfg:=<value>"):
        graph.resolve({}, tmp_path)
    assert graph.resolve({"cfg": "x"}, tmp_path)[0].name == "n"


def test_shipped_graphs_resolve_with_their_defaults() -> None:
    graphs = available_graphs()
    assert graphs, "pld_bringup ships no graphs"
    for path in graphs.values():
        nodes = load_graph(path).resolve({}, share_dir())
        assert nodes, f"{path} resolves to no nodes"
