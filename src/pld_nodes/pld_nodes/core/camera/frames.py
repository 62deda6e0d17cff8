"""What a camera source hands to the capture worker, and the errors that mean "reconnect"."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CameraDisconnected", "CameraError", "Frame", "FrameTimeout"]


class CameraError(RuntimeError):
    """The camera cannot deliver frames (unplugged, busy, file gone): close and reopen later."""


class CameraDisconnected(CameraError):
    """Opening or reading failed; the capture worker retries every ``reconnect_period_s``."""


class FrameTimeout(CameraError):
    """No frame within the source's timeout: a stalled device is treated as an unplugged one."""


@dataclass(frozen=True)
class Frame:
    """One captured image (and depth aligned to it, when enabled).

    ``capture_ns`` is the time the exposure happened on the host's wall clock (ROS time without
    sim time): device timestamps are mapped onto it (``DeviceClockMapper``), so every
    downstream consumer can judge staleness and pair by stamp.
    """

    color: np.ndarray  # HxWx3 uint8, RGB, row 0 = top
    capture_ns: int
    sequence: int  # the device's frame counter: a gap means frames lost before us
    depth: np.ndarray | None = None  # HxW uint16 in ``depth_scale_m`` units
    depth_scale_m: float = 0.001
    arrival_ns: int = 0  # host time the frame reached us (latency diagnostics)
