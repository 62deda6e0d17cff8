"""The link between the ROS node and the control process: one shared-memory state block the
1 kHz loop writes without ever blocking (a seqlock), and queues for commands and events.

The control loop must never wait on the node: it only writes the state block and polls the
command queue with ``get_nowait``. The node reads a consistent snapshot by retrying while the
writer is mid-update.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

# Layout of the float64 state block: name -> (offset, length). seq (at 0) is odd while writing.
_FIELDS: dict[str, int] = {
    "seq": 1,
    "robot_time": 1,  # s, the robot's clock
    "wall_time": 1,  # time.time() when the state arrived (stamps)
    "q": 7,
    "dq": 7,
    "q_goal": 7,
    "q_cmd": 7,
    "O_T_EE": 16,  # column-major, as libfranka sends it
    "wrench": 6,  # O_F_ext_hat_K: N, N·m in the base frame
    "robot_mode": 1,  # pylibfranka.RobotMode as an int
    "control_state": 1,  # ControlState below
    "cycles": 1,
    "success_rate": 1,  # libfranka's control_command_success_rate
    "commands": 1,
    "reflexes": 1,
    "recoveries": 1,
}
LAYOUT: dict[str, slice] = {}
_offset = 0
for _name, _n in _FIELDS.items():
    LAYOUT[_name] = slice(_offset, _offset + _n)
    _offset += _n
SIZE = _offset

# control_state values
STARTING, CONTROLLING, HOMING, RECOVERING, FAULT, STOPPED = range(6)
CONTROL_STATE_NAMES = ("starting", "controlling", "homing", "recovering", "fault", "stopped")


@dataclass(frozen=True)
class StateSnapshot:
    robot_time: float
    wall_time: float
    q: np.ndarray
    dq: np.ndarray
    q_goal: np.ndarray
    q_cmd: np.ndarray
    ee_pose: np.ndarray  # 4x4
    wrench: np.ndarray
    robot_mode: int
    control_state: int
    cycles: int
    success_rate: float
    commands: int
    reflexes: int
    recoveries: int

    @property
    def control_state_name(self) -> str:
        return CONTROL_STATE_NAMES[self.control_state]


class SharedState:
    """Create (``name=None``) or attach to the state block."""

    def __init__(self, name: str | None = None) -> None:
        if name is None:
            self._shm = shared_memory.SharedMemory(create=True, size=SIZE * 8)
            self._owner = True
        else:
            self._shm = shared_memory.SharedMemory(name=name)
            self._owner = False
        self.array = np.ndarray((SIZE,), np.float64, buffer=self._shm.buf)
        if self._owner:
            self.array[:] = 0.0

    @property
    def name(self) -> str:
        return self._shm.name

    def write(self, **values: object) -> None:
        """Writer side (the control process only): never blocks."""
        a = self.array
        a[0] += 1.0  # odd: writing
        for key, value in values.items():
            a[LAYOUT[key]] = value
        a[0] += 1.0

    def read(self, timeout_s: float = 0.01) -> StateSnapshot:
        """A consistent snapshot (retries while the writer is mid-update)."""
        deadline = time.monotonic() + timeout_s
        while True:
            before = self.array[0]
            copy = self.array.copy()
            if before % 2 == 0 and self.array[0] == before:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("state block stayed mid-update (writer died while writing?)")
        f = {k: copy[s] for k, s in LAYOUT.items()}
        return StateSnapshot(
            robot_time=float(f["robot_time"][0]),
            wall_time=float(f["wall_time"][0]),
            q=f["q"],
            dq=f["dq"],
            q_goal=f["q_goal"],
            q_cmd=f["q_cmd"],
            ee_pose=f["O_T_EE"].reshape(4, 4, order="F"),
            wrench=f["wrench"],
            robot_mode=int(f["robot_mode"][0]),
            control_state=int(f["control_state"][0]),
            cycles=int(f["cycles"][0]),
            success_rate=float(f["success_rate"][0]),
            commands=int(f["commands"][0]),
            reflexes=int(f["reflexes"][0]),
            recoveries=int(f["recoveries"][0]),
        )

    def close(self) -> None:
        del self.array
        self._shm.close()
        if self._owner:
            self._shm.unlink()
