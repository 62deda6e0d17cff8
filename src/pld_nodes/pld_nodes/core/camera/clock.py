"""Device timestamps -> host wall-clock time.

A camera stamps frames with its own clock (RealSense ``hardware_clock``, V4L2 buffer times).
The host receives each frame some transport delay later. The smallest observed
``arrival - device`` difference over a sliding window is the best offset estimate: the true
offset plus the shortest transport delay, which the frames that were delivered fastest show.
A window (not all history) lets the estimate follow the two clocks' drift; a device clock that
jumps back (reconnect, reset) restarts the estimate.
"""

from __future__ import annotations

from collections import deque

__all__ = ["DeviceClockMapper"]


class DeviceClockMapper:
    """Map device timestamps (ms, any epoch) to host time (ns) by a windowed minimum offset."""

    def __init__(self, window: int = 300) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._offsets: deque[float] = deque(maxlen=window)
        self._last_device_ms: float | None = None
        self.resets = 0

    def reset(self) -> None:
        self._offsets.clear()
        self._last_device_ms = None

    def map(self, device_ms: float, arrival_ns: int) -> int:
        """Host capture time of a frame stamped ``device_ms`` that arrived at ``arrival_ns``."""
        if self._last_device_ms is not None and device_ms < self._last_device_ms:
            self.reset()
            self.resets += 1
        self._last_device_ms = device_ms
        self._offsets.append(arrival_ns - device_ms * 1e6)
        return round(device_ms * 1e6 + min(self._offsets))
