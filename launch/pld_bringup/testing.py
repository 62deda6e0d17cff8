"""Test harness for real ROS graphs: isolated domains, an in-process probe node, shm cleanup.

Every test graph gets its own ROS_DOMAIN_ID (1..100; above ~101 Fast DDS ports collide with
the ephemeral range), LOCALHOST discovery, a temporary ROS_LOG_DIR and a Fast DDS profile whose
16 MB shared-memory segment carries camera-sized images. ``RosProbe`` is a node in the test
process (its own rclpy Context, spun in a thread) to publish, subscribe and call services.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pld_bringup.dds import write_fastdds_profile
from pld_bringup.probe import MessageLog, RosProbe

DOMAIN_MIN, DOMAIN_MAX = 1, 100


class DomainAllocator:
    """Hands out domain ids; pytest-xdist workers and concurrent runs get disjoint ranges."""

    def __init__(self, worker: str | None = None, block: int = 20) -> None:
        index = int(worker[2:]) if worker and worker.startswith("gw") else os.getpid()
        span = DOMAIN_MAX - DOMAIN_MIN + 1
        self._block = block
        self._start = DOMAIN_MIN + (index * block) % span
        self._next = 0

    def allocate(self) -> int:
        domain = self._start + self._next % self._block
        self._next += 1
        return min(domain, DOMAIN_MAX)


def ros_environment(workdir: Path, domain_id: int | None = None) -> dict[str, str]:
    """Environment variables for an isolated, localhost-only ROS graph under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    profile = write_fastdds_profile(workdir / "fastdds_localhost.xml", localhost_only=True)
    env = {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOG_DIR": str(workdir / "ros_log"),
        "FASTRTPS_DEFAULT_PROFILES_FILE": str(profile),
        "RCUTILS_COLORIZED_OUTPUT": "0",
    }
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    return env


def clean_shared_memory() -> None:
    """Remove Fast DDS shared-memory files left by crashed processes (best effort)."""
    tool = Path(sys.prefix) / "tools" / "fastdds" / "fastdds.py"
    if tool.is_file():
        subprocess.run(
            [sys.executable, str(tool), "shm", "clean"],
            capture_output=True,
            timeout=30,
            check=False,
        )


__all__ = ["DomainAllocator", "MessageLog", "RosProbe", "clean_shared_memory", "ros_environment"]
