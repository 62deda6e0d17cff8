"""Generic cameras through OpenCV: V4L2 devices (index or /dev path) and video files (replay).

Files are paced at their frame rate (or ``fps``) so a replay looks like a live camera, stamped
with the time each frame is released; at the end they are reopened (``loop``) exactly like a
device that was unplugged and plugged back, so a file that disappears is reported the same way.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pld_nodes.core.camera.clock import DeviceClockMapper
from pld_nodes.core.camera.frames import CameraDisconnected, Frame, FrameTimeout
from pld_nodes.core.config import ConfigError

__all__ = ["EndOfStream", "OpenCvSource", "OpenCvSourceConfig"]


class EndOfStream(CameraDisconnected):
    """A video file ended and ``loop`` is off: the source is done, not broken."""


@dataclass(frozen=True)
class OpenCvSourceConfig:
    device: str  # "0" (index), "/dev/video0" (V4L2 path) or a video file
    width: int = 0  # 0 = the device's/file's own size (devices: requested mode)
    height: int = 0
    fps: float = 0.0  # devices: requested rate; files: replay rate (0 = the file's rate)
    fourcc: str = ""  # devices: e.g. "MJPG" for high resolutions over USB 2
    loop: bool = True  # files: start again at the end
    frame_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.device:
            raise ConfigError("opencv camera needs 'device' (index, /dev/videoN or a video file)")
        if self.width < 0 or self.height < 0 or self.fps < 0:
            raise ConfigError(
                f"width/height/fps must be >= 0, got {self.width}/{self.height}/{self.fps}"
            )
        if self.fourcc and len(self.fourcc) != 4:
            raise ConfigError(f"fourcc must have 4 characters, got {self.fourcc!r}")
        if self.frame_timeout_s <= 0:
            raise ConfigError(f"frame_timeout_s must be > 0, got {self.frame_timeout_s}")

    @property
    def is_file(self) -> bool:
        return not (self.device.isdigit() or self.device.startswith("/dev/"))


class OpenCvSource:
    """A ``FrameSource`` over ``cv2.VideoCapture``."""

    def __init__(self, config: OpenCvSourceConfig) -> None:
        self.config = config
        self._cap: cv2.VideoCapture | None = None
        self._sequence = 0
        self._period_s = 0.0
        self._next_release = 0.0
        self._clock = DeviceClockMapper()

    def describe(self) -> str:
        kind = "video file" if self.config.is_file else "V4L2 device"
        return f"{kind} {self.config.device}"

    def intrinsics(self) -> None:
        """OpenCV cannot tell; calibrate (``pld-calibrate``) and pass ``camera_info_file``."""
        return None

    def open(self) -> None:
        c = self.config
        if c.is_file:
            if not Path(c.device).is_file():
                raise CameraDisconnected(f"video file {c.device} not found")
            cap = cv2.VideoCapture(c.device)
        else:
            target: int | str = int(c.device) if c.device.isdigit() else c.device
            if isinstance(target, str) and not os.path.exists(target):
                raise CameraDisconnected(f"{target} does not exist (unplugged?)")
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
            if cap.isOpened():
                self._request_mode(cap)
        if not cap.isOpened():
            cap.release()
            raise CameraDisconnected(f"cannot open {self.describe()}")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if (c.width and width != c.width) or (c.height and height != c.height):
            cap.release()
            raise CameraDisconnected(
                f"{self.describe()} gives {width}x{height}, configured {c.width}x{c.height}"
            )
        rate = c.fps or float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
        self._period_s = 1.0 / rate if c.is_file else 0.0
        self._next_release = time.monotonic()
        self._clock.reset()
        self._cap = cap

    def _request_mode(self, cap: cv2.VideoCapture) -> None:
        c = self.config
        if c.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*c.fourcc))
        if c.width and c.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, c.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, c.height)
        if c.fps:
            cap.set(cv2.CAP_PROP_FPS, c.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of old ones

    def read(self) -> Frame:
        if self._cap is None:
            raise CameraDisconnected(f"{self.describe()} is not open")
        if self.config.is_file:
            return self._read_file()
        started = time.monotonic()
        ok, bgr = self._cap.read()
        arrival_ns = time.time_ns()
        if not ok or bgr is None:
            if time.monotonic() - started >= self.config.frame_timeout_s:
                raise FrameTimeout(
                    f"no frame from {self.describe()} in {self.config.frame_timeout_s} s"
                )
            raise CameraDisconnected(f"{self.describe()} stopped delivering frames")
        device_ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        capture_ns = self._clock.map(device_ms, arrival_ns) if device_ms > 0 else arrival_ns
        return self._frame(bgr, capture_ns, arrival_ns)

    def _read_file(self) -> Frame:
        assert self._cap is not None
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self.close()
            if not self.config.loop:
                raise EndOfStream(f"{self.describe()} ended")
            self.open()  # raises CameraDisconnected when the file is gone
            ok, bgr = self._cap.read() if self._cap is not None else (False, None)
            if not ok or bgr is None:
                raise CameraDisconnected(f"{self.describe()} has no frames")
        self._next_release = max(self._next_release + self._period_s, time.monotonic() - 1.0)
        delay = self._next_release - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.time_ns()
        return self._frame(bgr, now, now)

    def _frame(self, bgr: np.ndarray, capture_ns: int, arrival_ns: int) -> Frame:
        self._sequence += 1
        if bgr.ndim == 2:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return Frame(
            color=rgb, capture_ns=capture_ns, sequence=self._sequence, arrival_ns=arrival_ns
        )

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
