"""Smoke check of the workstation image; the Dockerfile runs it at build time (after sourcing
ROS and the workspace), and it can be re-run in a container:

    docker compose run --rm robot python /opt/pld/smoke_check.py

It fails (exit 1) when the apt ROS packages, the colcon-built workspace and the locked venv do
not fit together: a message type that does not round-trip through rclpy's C serialisation with
the venv's numpy, a node executable that would start without the venv's packages, a missing
hardware binding. No GPU or device is needed (CUDA availability is only reported).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

THIRD_PARTY = (
    "numpy",
    "torch",
    "onnxruntime",
    "cv2",
    "mujoco",
    "zarr",
    "safetensors",
    "msgpack",
    "websockets",
    "gymnasium",
    "scipy",
    "yaml",
    "pylibfranka",
    "pyrealsense2",
)
STACK = ("pld_interfaces.msg", "pld_interfaces.srv", "pld_nodes", "sim_bridge", "pld_bringup")


def check_imports() -> None:
    for name in THIRD_PARTY + STACK:
        module = importlib.import_module(name)
        print(f"ok import {name} {getattr(module, '__version__', '')}".rstrip())


def check_messages() -> None:
    """Round-trip messages with fixed-size (numpy) and variable-size arrays through rclpy."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import CameraInfo, Image, JointState

    from pld_interfaces import msg as pld_msg

    info = CameraInfo(width=640, height=480, k=[600.0, 0, 320, 0, 600.0, 240, 0, 0, 1])
    joints = JointState(name=["fr3_joint1"], position=[0.1], velocity=[0.0], effort=[0.0])
    image = Image(width=2, height=1, encoding="rgb8", step=6, data=bytes(range(6)))
    samples = [info, joints, image]
    samples += [getattr(pld_msg, name)() for name in dir(pld_msg) if name[:1].isupper()]
    for message in samples:
        again = deserialize_message(serialize_message(message), type(message))
        if again != message:
            raise SystemExit(f"{type(message).__name__} does not round-trip through rclpy")
    print(f"ok {len(samples)} message types round-trip through rclpy")


def check_executables() -> None:
    """The nodes' console scripts must run under this interpreter (the venv), not /usr/bin."""
    from ament_index_python.packages import get_package_prefix

    venv_bin = Path(sys.executable).parent
    count = 0
    for package in ("pld_nodes", "sim_bridge", "pld_bringup"):
        for script in sorted((Path(get_package_prefix(package)) / "lib" / package).iterdir()):
            first = script.read_text(errors="replace").splitlines()[0]
            interpreter = Path(first.removeprefix("#!").split()[0]) if first[:2] == "#!" else None
            if interpreter is None or interpreter.parent != venv_bin:
                raise SystemExit(f"{script}: {first!r} is not an interpreter in {venv_bin}")
            count += 1
    if count == 0:
        raise SystemExit("no node executables found in the workspace")
    print(f"ok {count} executables run under {venv_bin}")


def check_share() -> None:
    from pld_bringup import share_dir

    profile = Path(share_dir()) / "config" / "fastdds.xml"
    if not profile.is_file():
        raise SystemExit(f"missing {profile}")
    print(f"ok {profile}")


def main() -> None:
    check_imports()
    check_messages()
    check_executables()
    check_share()
    import torch

    print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, ", end="")
    print(f"CUDA available here: {torch.cuda.is_available()}")


if __name__ == "__main__":
    main()
