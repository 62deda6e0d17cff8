"""The functional core stays ROS-free: no rclpy or message imports under core/ or envs/."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE_DIRS = [REPO / "src/pld_nodes/pld_nodes/core", REPO / "sim_bridge/sim_bridge/envs"]
FORBIDDEN = ("rclpy", "pld_interfaces", "launch", "launch_ros")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def core_files() -> list[Path]:
    return sorted(p for d in CORE_DIRS if d.is_dir() for p in d.rglob("*.py"))


def test_core_dirs_exist_and_have_modules() -> None:
    assert len(core_files()) >= 3


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_core_module_does_not_import_ros(path: Path) -> None:
    bad = sorted(
        m
        for m in imported_modules(path)
        if m.split(".")[0] in FORBIDDEN
        or m.split(".")[0].endswith("_msgs")
        or m.split(".")[0].endswith("_srvs")
    )
    assert not bad, f"{path.relative_to(REPO)} imports {bad}; keep ROS in the node adapters"
