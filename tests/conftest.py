"""Shared fixtures: isolated ROS domains, an in-process probe node, and a graph launcher."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pld_bringup.graph import NodeLaunch
from pld_bringup.process_launcher import GraphLauncher
from pld_bringup.testing import DomainAllocator, RosProbe, clean_shared_memory, ros_environment

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def ros_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Process-wide ROS settings (LOCALHOST discovery, log dir, DDS profile) for this session."""
    env = ros_environment(tmp_path_factory.mktemp("ros"))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    clean_shared_memory()


@pytest.fixture(scope="session")
def domain_allocator() -> DomainAllocator:
    return DomainAllocator(os.environ.get("PYTEST_XDIST_WORKER"))


@pytest.fixture
def ros_domain(ros_session: dict[str, str], domain_allocator: DomainAllocator) -> int:
    """A ROS_DOMAIN_ID of this test's own."""
    return domain_allocator.allocate()


@pytest.fixture
def ros_probe(ros_domain: int) -> Iterator[RosProbe]:
    probe = RosProbe(ros_domain)
    yield probe
    probe.close()


@pytest.fixture
def launch_graph(
    ros_session: dict[str, str], ros_domain: int
) -> Iterator[Callable[..., GraphLauncher]]:
    """Factory: start a list of NodeLaunch in this test's domain; all are stopped at teardown."""
    launchers: list[GraphLauncher] = []

    def start(nodes: list[NodeLaunch], **kwargs: object) -> GraphLauncher:
        env = dict(os.environ) | {"ROS_DOMAIN_ID": str(ros_domain)}
        launcher = GraphLauncher(nodes, env=env, **kwargs)  # type: ignore[arg-type]
        launchers.append(launcher)
        launcher.start()
        return launcher

    yield start
    for launcher in launchers:
        launcher.stop()


@pytest.fixture(scope="session")
def franka_sim_venv() -> Path:
    """franka-sim in its own venv (scripts/setup_franka_sim.sh; idempotent, ~10 s once)."""
    import subprocess

    subprocess.run(
        ["bash", str(REPO_ROOT / "scripts/setup_franka_sim.sh")], check=True, timeout=600
    )
    return REPO_ROOT / ".venv-peers" / "franka-sim"


@pytest.fixture
def franka_sim(franka_sim_venv: Path, tmp_path: Path) -> Iterator[object]:
    """A fresh franka-sim server (fixed ports 1337/1338: one per machine) for this test."""
    from pld_bringup.franka_sim import FrankaSimServer

    server = FrankaSimServer(franka_sim_venv, log_path=tmp_path / "franka-sim.log").start()
    yield server
    server.stop()
