"""The capture worker: a camera thread that never waits for ROS, and a delivery thread.

Capture thread: open the source (retrying every ``reconnect_period_s`` while it is unplugged),
read frames as fast as the camera gives them and put each in a one-frame slot. Delivery
thread: take the newest frame from the slot and hand it to ``deliver`` (the node publishes it
and its policy-size copy). If delivery falls behind, older frames are overwritten and counted
as dropped — a slow subscriber or a slow resize never stalls the camera's driver buffers, and
what goes out is always the newest frame.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from pld_nodes.core.camera.calibration_files import CameraIntrinsics
from pld_nodes.core.camera.frames import CameraError, Frame
from pld_nodes.core.camera.opencv_source import EndOfStream
from pld_nodes.core.config import ConfigError

__all__ = [
    "CaptureState",
    "CaptureStats",
    "CaptureWorker",
    "FrameSource",
    "LatestSlot",
    "PolicyStream",
    "StatsSnapshot",
]


class FrameSource(Protocol):
    def open(self) -> None: ...
    def read(self) -> Frame: ...
    def close(self) -> None: ...
    def describe(self) -> str: ...
    def intrinsics(self) -> CameraIntrinsics | None: ...


class CaptureState(enum.Enum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    DISCONNECTED = "disconnected"
    FINISHED = "finished"  # a recording ended and loop is off
    STOPPED = "stopped"


@dataclass(frozen=True)
class PolicyStream:
    """The policy-size copy of each frame: crop (x, y, w, h) then resize with area averaging."""

    width: int
    height: int
    crop_xywh: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"policy stream size must be > 0, got {self.width}x{self.height}")
        if self.crop_xywh is not None:
            x, y, w, h = self.crop_xywh
            if x < 0 or y < 0 or w <= 0 or h <= 0:
                raise ConfigError(
                    f"policy crop must be x, y >= 0 and w, h > 0, got {self.crop_xywh}"
                )

    def check_fits(self, width: int, height: int) -> None:
        if self.crop_xywh is None:
            return
        x, y, w, h = self.crop_xywh
        if x + w > width or y + h > height:
            raise ConfigError(f"policy crop {self.crop_xywh} does not fit a {width}x{height} image")

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.crop_xywh is not None:
            x, y, w, h = self.crop_xywh
            image = image[y : y + h, x : x + w]
        if image.shape[1] == self.width and image.shape[0] == self.height:
            return np.ascontiguousarray(image)
        return cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)

    def intrinsics(self, full: CameraIntrinsics) -> CameraIntrinsics:
        return full.cropped_and_resized(self.crop_xywh, self.width, self.height)


class LatestSlot:
    """A one-item mailbox: ``put`` replaces an unread item (and says so), ``take`` waits."""

    def __init__(self) -> None:
        self._item: Frame | None = None
        self._cond = threading.Condition()

    def put(self, item: Frame) -> bool:
        """Store ``item``; True when it replaced one that was never taken (a dropped frame)."""
        with self._cond:
            dropped = self._item is not None
            self._item = item
            self._cond.notify()
            return dropped

    def take(self, timeout_s: float) -> Frame | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout_s)
            item, self._item = self._item, None
            return item


@dataclass(frozen=True)
class StatsSnapshot:
    state: CaptureState
    source: str
    frames: int
    delivered: int
    dropped_device: int  # gaps in the device's frame counter
    dropped_behind: int  # overwritten because delivery was behind
    reconnects: int
    rate_hz: float
    latency_p50_ms: float
    latency_p99_ms: float
    last_error: str
    seconds_since_frame: float


class CaptureStats:
    """Counters and a sliding window of frame times and capture-to-delivery latencies."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._window_s = window_s
        self._times: deque[float] = deque()
        self._latencies_ms: deque[float] = deque(maxlen=600)
        self.state = CaptureState.CONNECTING
        self.source = ""
        self.frames = self.delivered = self.dropped_device = self.dropped_behind = 0
        self.reconnects = 0
        self.last_error = ""
        self._last_sequence: int | None = None
        self._last_frame_at = 0.0

    def frame(self, sequence: int, now: float) -> None:
        with self._lock:
            self.frames += 1
            if self._last_sequence is not None and sequence > self._last_sequence + 1:
                self.dropped_device += sequence - self._last_sequence - 1
            self._last_sequence = sequence
            self._last_frame_at = now
            self._times.append(now)
            while self._times and self._times[0] < now - self._window_s:
                self._times.popleft()

    def new_connection(self) -> None:
        with self._lock:
            self._last_sequence = None  # counters restart after a reconnect

    def delivered_one(self, latency_ms: float) -> None:
        with self._lock:
            self.delivered += 1
            self._latencies_ms.append(latency_ms)

    def behind(self) -> None:
        with self._lock:
            self.dropped_behind += 1

    def snapshot(self, now: float) -> StatsSnapshot:
        with self._lock:
            times = [t for t in self._times if t >= now - self._window_s]
            rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
            if times and now - times[-1] > self._window_s:
                rate = 0.0
            lat = np.asarray(self._latencies_ms) if self._latencies_ms else np.zeros(1)
            return StatsSnapshot(
                state=self.state,
                source=self.source,
                frames=self.frames,
                delivered=self.delivered,
                dropped_device=self.dropped_device,
                dropped_behind=self.dropped_behind,
                reconnects=self.reconnects,
                rate_hz=float(rate),
                latency_p50_ms=float(np.percentile(lat, 50)),
                latency_p99_ms=float(np.percentile(lat, 99)),
                last_error=self.last_error,
                seconds_since_frame=(now - self._last_frame_at) if self._last_frame_at else -1.0,
            )


class CaptureWorker:
    """Runs one ``FrameSource`` on its own thread and delivers its newest frames on another.

    ``deliver(frame)`` runs on the delivery thread; an exception in it is reported through
    ``on_event`` and the frame is counted as not delivered (it must never kill capture).
    ``on_event(level, text)`` reports state changes ("warn"/"error"/"info") for the node's log.
    """

    def __init__(
        self,
        source: FrameSource,
        deliver: Callable[[Frame], None],
        *,
        reconnect_period_s: float = 1.0,
        on_event: Callable[[str, str], None] = lambda level, text: None,
    ) -> None:
        if reconnect_period_s <= 0:
            raise ConfigError(f"reconnect_period_s must be > 0, got {reconnect_period_s}")
        self._source = source
        self._deliver = deliver
        self._reconnect_period_s = reconnect_period_s
        self._on_event = on_event
        self._slot = LatestSlot()
        self._stop = threading.Event()
        self.stats = CaptureStats()
        self.stats.source = source.describe()
        self._threads = [
            threading.Thread(target=self._capture_loop, name="camera-capture", daemon=True),
            threading.Thread(target=self._delivery_loop, name="camera-deliver", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout_s)
        self.stats.state = CaptureState.STOPPED

    def _set_state(self, state: CaptureState, error: str = "") -> None:
        previous = self.stats.state
        self.stats.state = state
        if error:
            self.stats.last_error = error
        if state is previous:
            return
        if state is CaptureState.STREAMING:
            level = "info"
            text = f"{self._source.describe()}: streaming"
            if previous is CaptureState.DISCONNECTED:
                text += f" again (reconnect {self.stats.reconnects})"
        elif state is CaptureState.DISCONNECTED:
            level, text = "error", f"{self._source.describe()}: disconnected: {error}"
        else:
            level, text = "info", f"{self._source.describe()}: {state.value}"
        self._on_event(level, text)

    def _capture_loop(self) -> None:
        connected_once = False
        while not self._stop.is_set():
            try:
                self._source.open()
            except CameraError as exc:
                self._set_state(CaptureState.DISCONNECTED, str(exc))
                self._stop.wait(self._reconnect_period_s)
                continue
            if connected_once:
                self.stats.reconnects += 1
            connected_once = True
            self.stats.new_connection()
            self._set_state(CaptureState.STREAMING)
            try:
                while not self._stop.is_set():
                    frame = self._source.read()
                    self.stats.frame(frame.sequence, time.monotonic())
                    if self._slot.put(frame):
                        self.stats.behind()
            except EndOfStream:
                self._source.close()
                self._set_state(CaptureState.FINISHED)
                return
            except CameraError as exc:
                self._source.close()
                self._set_state(CaptureState.DISCONNECTED, str(exc))
                self._stop.wait(self._reconnect_period_s)
                continue
            except Exception as exc:  # a driver bug must not end capture silently
                self._source.close()
                self._set_state(CaptureState.DISCONNECTED, f"{type(exc).__name__}: {exc}")
                self._stop.wait(self._reconnect_period_s)
                continue
        self._source.close()

    def _delivery_loop(self) -> None:
        while not self._stop.is_set():
            frame = self._slot.take(timeout_s=0.1)
            if frame is None:
                continue
            try:
                self._deliver(frame)
            except Exception as exc:
                self._on_event("error", f"delivering a frame failed: {type(exc).__name__}: {exc}")
                continue
            self.stats.delivered_one((time.time_ns() - frame.capture_ns) / 1e6)
