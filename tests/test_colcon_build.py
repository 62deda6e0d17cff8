"""The ROS workspace builds with colcon and installs what `ros2 run`/`ros2 launch` look for."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("pld_interfaces", "pld_nodes", "sim_bridge", "pld_bringup", "pld_operator_panel")


@pytest.fixture(scope="module")
def install_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("colcon")
    venv = Path(sys.prefix)
    env = dict(os.environ) | {
        "AMENT_PREFIX_PATH": str(venv),
        "CMAKE_PREFIX_PATH": str(venv),
        "COLCON_DEFAULTS_FILE": str(REPO / "ros2_ws" / "defaults.yaml"),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    cmd = [
        str(venv / "bin" / "colcon"),
        "--log-base",
        str(work / "log"),
        "build",
        "--base-paths",
        str(REPO / "ros2_ws" / "src"),
        "--build-base",
        str(work / "build"),
        "--install-base",
        str(work / "install"),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for pkg in PACKAGES:
        assert f"Finished <<< {pkg}" in result.stdout
    return work / "install"


def installed_env(install: Path) -> dict[str, str]:
    site = [str(install / p / "lib/python3.11/site-packages") for p in PACKAGES]
    return dict(os.environ) | {
        "AMENT_PREFIX_PATH": os.pathsep.join([*(str(install / p) for p in PACKAGES), sys.prefix]),
        "PYTHONPATH": os.pathsep.join(site),
    }


def test_executables_launch_files_and_configs_are_installed(install_dir: Path) -> None:
    assert (install_dir / "pld_nodes/lib/pld_nodes/health_monitor_node").is_file()
    assert (install_dir / "sim_bridge/lib/sim_bridge/sim_bridge_node").is_file()
    assert (install_dir / "pld_bringup/lib/pld_bringup/pld-launch").is_file()
    panel = install_dir / "pld_operator_panel/share/pld_operator_panel"
    assert (panel / "plugin.xml").is_file() and (panel / "package.xml").is_file()  # rqt finds it
    share = install_dir / "pld_bringup/share/pld_bringup"
    for sub in ("launch", "graphs", "config"):
        assert any((share / sub).iterdir()), f"nothing installed in share/pld_bringup/{sub}"
    launch_files = {p.name for p in (share / "launch").glob("*.launch.py")}
    graphs = {p.stem for p in (share / "graphs").glob("*.yaml")}
    assert {f"{g}.launch.py" for g in graphs} <= launch_files
    msgs = install_dir / "pld_interfaces/lib/python3.11/site-packages/pld_interfaces/msg"
    assert (msgs / "_action_chunk.py").is_file()
    for pkg in PACKAGES:
        assert (install_dir / pkg / "share/ament_index/resource_index/packages" / pkg).is_file()


def test_installed_tree_finds_its_share_dir_and_graphs(install_dir: Path) -> None:
    code = (
        "import pld_bringup; from pld_bringup import share_dir, available_graphs;"
        "print(pld_bringup.__file__); print(share_dir()); print(sorted(available_graphs()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=installed_env(install_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    assert out[0].startswith(str(install_dir))
    assert out[1] == str(install_dir / "pld_bringup/share/pld_bringup")
    assert "sim" in out[2]


def test_installed_executable_runs_and_reports_config_errors(
    install_dir: Path, ros_session: dict
) -> None:
    exe = install_dir / "pld_nodes/lib/pld_nodes/health_monitor_node"
    result = subprocess.run(
        [sys.executable, str(exe), "--ros-args", "-p", "topics:=['/a']"],
        env=installed_env(install_dir) | {"ROS_DOMAIN_ID": "99"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "required parameter 'types'" in result.stderr
