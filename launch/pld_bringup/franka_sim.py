"""Run franka-sim (the libfranka wire-protocol server on MuJoCo) as a peer process.

``FrankaSimServer`` starts ``run-franka-sim-server --enforce-motion-limits
--enforce-comm-constraints`` from its own venv (``scripts/setup_franka_sim.sh``) in its own
process session, waits until it serves (``franka-sim-check`` *and* still alive), and stops it
with SIGTERM to the whole session. The server listens on fixed ports (1337 arm, 1338 gripper)
and serves one client at a time, so one server per machine: starting a second one fails fast.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ARM_PORT, GRIPPER_PORT = 1337, 1338
HOST = "127.0.0.1"


def default_venv() -> Path:
    env = os.environ.get("PLD_FRANKA_SIM_VENV")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".venv-peers" / "franka-sim"


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


class FrankaSimError(RuntimeError):
    pass


class FrankaSimServer:
    def __init__(self, venv: Path | None = None, log_path: Path | None = None) -> None:
        self.venv = Path(venv or default_venv())
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout_s: float = 30.0) -> FrankaSimServer:
        server = self.venv / "bin" / "run-franka-sim-server"
        model = self.venv / "fr3.xml"
        if not server.exists() or not model.exists():
            raise FrankaSimError(
                f"franka-sim is not set up in {self.venv}: run scripts/setup_franka_sim.sh"
            )
        for port in (ARM_PORT, GRIPPER_PORT):
            if port_in_use(port):
                raise FrankaSimError(f"port {port} is in use: another franka-sim (or robot)?")
        env = dict(os.environ, FR3_MJCF=str(model))
        self._log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(server), "--enforce-motion-limits", "--enforce-comm-constraints"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # stop() signals the whole session
        )
        check = subprocess.run(
            [str(self.venv / "bin" / "franka-sim-check"), "--host", HOST, "--port",
             str(ARM_PORT), "--timeout", str(int(timeout_s))],
            capture_output=True, text=True, timeout=timeout_s + 10,
        )  # fmt: skip
        if check.returncode != 0 or self.process.poll() is not None:
            self.stop()
            raise FrankaSimError(f"franka-sim did not come up: {check.stdout}{check.stderr}")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        deadline = time.monotonic() + 5.0
        while port_in_use(ARM_PORT) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self.process = None

    def __enter__(self) -> FrankaSimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
