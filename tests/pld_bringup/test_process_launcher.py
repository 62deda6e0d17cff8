"""The process launcher with real nodes in separate processes, in an isolated ROS domain."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from pld_bringup.graph import GraphError, NodeLaunch, load_graph
from pld_bringup.process_launcher import GraphLauncher, resolve_command

pytestmark = pytest.mark.ros
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "graphs"
OK = b"\x00"


def monitor_nodes(**args: str) -> list[NodeLaunch]:
    return load_graph(FIXTURES / "monitors.yaml").resolve(args, FIXTURES)


def healthy(msg: DiagnosticArray) -> bool:
    return bool(msg.status) and all(s.level == OK for s in msg.status)


def steady(msg: DiagnosticArray) -> bool:
    """Healthy with a full 2 s rate window behind it (20 messages at 10 Hz)."""
    values = {kv.key: kv.value for kv in msg.status[0].values} if msg.status else {}
    return healthy(msg) and int(values.get("count", 0)) >= 25


def test_two_nodes_exchange_messages_across_processes(launch_graph, ros_probe) -> None:
    lines: list[str] = []
    launcher = launch_graph(monitor_nodes(), sink=lines.append)
    # Each monitor reports the other's output stream as healthy only if its messages arrive.
    for topic in ("/monitor_a/diagnostics", "/monitor_b/diagnostics"):
        log = ros_probe.subscribe(DiagnosticArray, topic)
        msg = log.wait_for(steady, timeout_s=20.0)[0]
        values = {kv.key: kv.value for kv in msg.status[0].values}
        assert float(values["rate_hz"]) == pytest.approx(10.0, rel=0.3)
    assert sorted(launcher.running()) == ["monitor_a", "monitor_b"]
    assert any(line.startswith("[monitor_b] ") and "watching" in line for line in lines)
    codes = launcher.stop()
    assert codes == {"monitor_a": 0, "monitor_b": 0}  # SIGINT gave a clean shutdown


def test_killed_node_is_reported_and_stale_stream_detected(launch_graph, ros_probe, caplog) -> None:
    launcher = launch_graph(monitor_nodes(b_required="false"))
    log = ros_probe.subscribe(DiagnosticArray, "/monitor_a/diagnostics")
    log.wait_for(healthy, timeout_s=20.0)
    os.kill(launcher.pid("monitor_b"), signal.SIGKILL)
    assert launcher.wait(timeout_s=3.0) is None  # not required: the graph keeps running
    assert launcher.running() == ["monitor_a"]
    assert "node 'monitor_b' died: killed by SIGKILL" in caplog.text
    # The survivor sees its peer's stream go stale.
    stale = log.wait_for(lambda m: m.status and "stale:" in m.status[0].message, timeout_s=10.0)
    assert stale[0].status[0].level == b"\x03"


def test_required_node_crash_stops_the_graph(launch_graph, caplog) -> None:
    launcher = launch_graph(monitor_nodes())
    time.sleep(1.0)
    os.kill(launcher.pid("monitor_b"), signal.SIGKILL)
    assert launcher.wait(timeout_s=15.0) == 1
    assert launcher.running() == []
    assert "node 'monitor_b' died: killed by SIGKILL (required: stopping the graph)" in caplog.text


def test_config_error_exits_2_with_the_reason(launch_graph, caplog, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    topics: [/a]\n    types: [std_msgs/msg/Nope]\n")
    node = NodeLaunch("broken", "pld_nodes", "health_monitor_node", parameter_files=(bad,))
    launcher = launch_graph([node])
    assert launcher.wait(timeout_s=20.0) == 1
    assert "node 'broken' died: exit code 2 (configuration error)" in caplog.text
    assert "message type 'Nope' not found in std_msgs.msg" in caplog.text


def test_unknown_package_or_executable_fails_before_starting() -> None:
    with pytest.raises(GraphError, match="package 'no_such_pkg' is not installed"):
        resolve_command(NodeLaunch("x", "no_such_pkg", "e"))
    with pytest.raises(GraphError, match=r"has no executable 'nope_node'; it has \["):
        GraphLauncher([NodeLaunch("x", "pld_nodes", "nope_node")])


def test_node_ignoring_sigint_is_escalated(launch_graph, tmp_path: Path, caplog) -> None:
    launcher = launch_graph(monitor_nodes(), sigint_timeout_s=0.5)
    time.sleep(1.0)
    # Make monitor_a's process ignore SIGINT by stopping it (SIGSTOP): only SIGKILL ends it.
    os.kill(launcher.pid("monitor_a"), signal.SIGSTOP)
    codes = launcher.stop()
    assert codes["monitor_b"] == 0
    assert codes["monitor_a"] in (-signal.SIGTERM, -signal.SIGKILL)
    assert "did not stop in time" in caplog.text


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pld_bringup.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=FIXTURES,
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("no_such_graph",), "unknown graph 'no_such_graph'; available:"),
        (("monitors.yaml", "period=3"), "launch argument 'period=3' is not of the form"),
        (("monitors.yaml", "speed:=3"), "unknown argument(s) ['speed']"),
        (("missing.yaml",), "graph file missing.yaml does not exist"),
    ],
)
def test_cli_bad_input_is_one_clear_line(args: tuple[str, ...], fragment: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_print_and_list() -> None:
    printed = run_cli("monitors.yaml", "--print")
    assert printed.returncode == 0, printed.stderr
    assert "monitor_b:" in printed.stdout and "__ns:=/watchers" in printed.stdout
    listed = run_cli("--list")
    assert listed.returncode == 0 and "sim:" in listed.stdout


def test_cli_runs_graph_and_stops_on_sigterm(ros_session, ros_domain) -> None:
    env = dict(os.environ) | {"ROS_DOMAIN_ID": str(ros_domain)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pld_bringup.cli", "monitors.yaml"],
        cwd=FIXTURES,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        seen = []
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if "[monitor_b]" in line and "watching" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "node 'monitor_a' stopped: exit code 0" in out
