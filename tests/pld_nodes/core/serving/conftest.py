"""Fixtures for the serving tests: a deterministic policy, servers on free ports, and the
official openpi client/server in their own (cached, hash-locked) peer venv."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from pld_nodes.core.policy.interface import PolicyObservation, PolicySpec
from pld_nodes.core.serving import PolicyServer

REPO = Path(__file__).resolve().parents[4]
PEER_LOCK = REPO / "requirements/peers/openpi-client.lock"
PEER_VENV = REPO / ".venv-peers/openpi-client"
PEER_SCRIPT = Path(__file__).resolve().parent / "peer_openpi.py"
_LOG = logging.getLogger(__name__)

TEST_SPEC = PolicySpec(
    name="test-chunk",
    chunk_horizon=5,
    image_keys=("agentview", "wrist"),
    image_size=(8, 8),
    proprio_dim=16,
)


class ChunkPolicy:
    """Deterministic test policy: chunk[k, j] = tanh(proprio[j] + 0.1 k + image/prompt terms).

    Instructions ``explode`` (raises), ``slow`` (sleeps 1 s) and ``nan`` (returns NaN) trigger
    failure paths.
    """

    def __init__(self, spec: PolicySpec = TEST_SPEC) -> None:
        self._spec = spec
        self.calls = 0

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    def bump_version(self) -> None:
        self._spec = dataclasses.replace(self._spec, version=self._spec.version + 1)

    def infer(self, obs: PolicyObservation) -> np.ndarray:
        self.calls += 1
        if obs.instruction == "explode":
            raise RuntimeError("boom")
        if obs.instruction == "slow":
            time.sleep(1.0)
        horizon, dim = self._spec.chunk_horizon, self._spec.action_dim
        if obs.instruction == "nan":
            return np.full((horizon, dim), np.nan, dtype=np.float32)
        image_term = 0.01 * sum(float(img.mean()) / 255.0 for img in obs.images.values())
        base = np.zeros(dim)
        n = min(dim, obs.proprio.shape[0])
        base[:n] = obs.proprio[:n]
        k = np.arange(horizon, dtype=np.float64)[:, None]
        out = np.tanh(base[None, :] + 0.1 * k + image_term + 0.001 * len(obs.instruction))
        return out.astype(np.float32)


def make_obs(
    seed: int = 0, spec: PolicySpec = TEST_SPEC, instruction: str = "pick"
) -> PolicyObservation:
    rng = np.random.default_rng(seed)
    return PolicyObservation(
        proprio=rng.uniform(-1.0, 1.0, spec.proprio_dim),
        instruction=instruction,
        images={
            cam: rng.integers(0, 256, (*spec.image_size, 3), dtype=np.uint8)
            for cam in spec.image_keys
        },
    )


@pytest.fixture
def serve() -> Iterator[Callable[..., PolicyServer]]:
    """Factory: start a PolicyServer on 127.0.0.1, port 0; all are stopped at teardown."""
    servers: list[PolicyServer] = []

    def start(policy: object | None = None, **kwargs: object) -> PolicyServer:
        server = PolicyServer(policy or ChunkPolicy(), "127.0.0.1", 0, **kwargs)  # type: ignore[arg-type]
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def peer_env() -> dict[str, str]:
    """Environment for processes of the peer venv: nothing of the ROS venv may leak in."""
    env = dict(os.environ)
    for key in ("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME"):
        env.pop(key, None)
    return env


def _build_peer_venv(digest: str) -> None:
    start = time.monotonic()
    env = peer_env()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True, env=env)
    python = str(PEER_VENV / "bin/python")
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"]
    proc = subprocess.run(
        [*pip, "--require-hashes", "--no-deps", "-r", str(PEER_LOCK)],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"cannot build the openpi peer venv at {PEER_VENV}:\n{proc.stderr[-3000:]}")
    subprocess.run(
        [python, "-c", "import openpi_client.websocket_client_policy, openpi_server"],
        check=True,
        env=env,
    )
    (PEER_VENV / ".lock-sha256").write_text(digest + "\n")
    _LOG.warning("built openpi peer venv in %.1f s", time.monotonic() - start)


@pytest.fixture(scope="session")
def peer_python() -> Path:
    """Python of the openpi peer venv; (re)built once when the lock file's hash changes."""
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the peer lock holds CPython 3.11 wheels")
    digest = hashlib.sha256(PEER_LOCK.read_bytes()).hexdigest()
    PEER_VENV.parent.mkdir(exist_ok=True)
    with open(PEER_VENV.parent / ".openpi-client.build-lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # xdist workers build it once
        stamp = PEER_VENV / ".lock-sha256"
        fresh = stamp.is_file() and stamp.read_text().strip() == digest
        if not (fresh and (PEER_VENV / "bin/python").exists()):
            _build_peer_venv(digest)
    return PEER_VENV / "bin/python"


@pytest.fixture
def run_peer(peer_python: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``peer_openpi.py`` with the given arguments in the peer venv; fail on errors."""

    def run(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(peer_python), str(PEER_SCRIPT), *args],
            env=peer_env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        assert proc.returncode == 0, f"peer {args[0]} failed:\n{proc.stderr[-3000:]}"
        return proc

    return run


@pytest.fixture
def policy() -> ChunkPolicy:
    return ChunkPolicy()


@pytest.fixture
def obs_factory() -> Callable[..., PolicyObservation]:
    return make_obs


@pytest.fixture
def openpi_reference_server(peer_python: Path) -> Iterator[int]:
    """openpi's own WebsocketPolicyServer (peer venv, see peer_openpi.PeerPolicy) on a free
    port; yields the port (clients retry until it listens)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen(
        [str(peer_python), str(PEER_SCRIPT), "server", str(port)],
        env=peer_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield port
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        _LOG.info("openpi reference server stderr:\n%s", err[-2000:])
