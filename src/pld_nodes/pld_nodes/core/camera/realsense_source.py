"""Intel RealSense cameras through pyrealsense2: a live device by serial number, or a recording.

Colour (rgb8) and optional depth (z16, aligned to colour on request) from one pipeline.
Timestamps: ``global_time`` (the SDK's host-synchronised device clock) and ``system_time`` are
host milliseconds already; ``hardware_clock`` and every recording are mapped onto the host
clock (``DeviceClockMapper``). A device that stops delivering (unplugged, USB reset) raises
``CameraDisconnected`` and the capture worker reopens it by serial number when it comes back.

pyrealsense2 is a hardware extra: it is imported when a RealSense source is created.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pld_nodes.core.camera.calibration_files import CameraIntrinsics
from pld_nodes.core.camera.clock import DeviceClockMapper
from pld_nodes.core.camera.frames import CameraDisconnected, Frame, FrameTimeout
from pld_nodes.core.camera.opencv_source import EndOfStream
from pld_nodes.core.config import ConfigError

__all__ = ["RealSenseSource", "RealSenseSourceConfig", "write_recording"]


def _rs() -> Any:
    try:
        import pyrealsense2 as rs
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ConfigError(
            "kind 'realsense' needs pyrealsense2 (pip install pyrealsense2; Debian: libusb-1.0-0)"
        ) from exc
    return rs


@dataclass(frozen=True)
class RealSenseSourceConfig:
    serial: str = ""  # "" = the first RealSense found
    playback_file: str = ""  # a .bag/.db3 recording instead of a device (replay, tests)
    width: int = 640
    height: int = 480
    fps: int = 30
    depth: bool = False
    align_depth: bool = True  # depth resampled into the colour camera's pixels
    loop: bool = True  # recordings: start again at the end
    frame_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.fps <= 0:
            raise ConfigError(
                f"realsense width/height/fps must be > 0, got {self.width}/{self.height}/{self.fps}"
            )
        if self.serial and self.playback_file:
            raise ConfigError(
                "set either 'serial' (a device) or 'playback_file' (a recording), not both"
            )
        if self.frame_timeout_s <= 0:
            raise ConfigError(f"frame_timeout_s must be > 0, got {self.frame_timeout_s}")


class RealSenseSource:
    """A ``FrameSource`` over one ``rs.pipeline``."""

    def __init__(self, config: RealSenseSourceConfig) -> None:
        self.config = config
        self._rs = _rs()
        self._pipeline: Any = None
        self._align: Any = None
        self._intrinsics: CameraIntrinsics | None = None
        self._depth_scale = 0.001
        self._clock = DeviceClockMapper()
        self.mismatched = 0  # framesets skipped because depth was not taken with the colour
        self._replay_origin: tuple[float, float] | None = None  # (monotonic s, frame ms)

    def describe(self) -> str:
        if self.config.playback_file:
            return f"RealSense recording {self.config.playback_file}"
        return f"RealSense {self.config.serial or '(first found)'}"

    def intrinsics(self) -> CameraIntrinsics | None:
        """The colour stream's factory calibration (used when no camera_info file is given)."""
        return self._intrinsics

    def open(self) -> None:
        rs, c = self._rs, self.config
        cfg = rs.config()
        if c.playback_file:
            if not Path(c.playback_file).is_file():
                raise CameraDisconnected(f"recording {c.playback_file} not found")
            cfg.enable_device_from_file(c.playback_file, repeat_playback=False)
        else:
            serials = [
                d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()
            ]
            if not serials or (c.serial and c.serial not in serials):
                found = ", ".join(serials) or "none"
                raise CameraDisconnected(f"RealSense {c.serial} not connected (found: {found})")
            if c.serial:
                cfg.enable_device(c.serial)
        cfg.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
        if c.depth:
            cfg.enable_stream(rs.stream.depth, c.width, c.height, rs.format.z16, c.fps)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(cfg)
        except RuntimeError as exc:
            raise CameraDisconnected(f"{self.describe()}: {exc}") from exc
        device = profile.get_device()
        if c.playback_file:
            # Replay paced by the frames' own timestamps (``_pace``), not by librealsense's
            # real-time mode, which follows the wall time at which the file was written.
            device.as_playback().set_real_time(False)
            self._replay_origin = None
        color = profile.get_stream(rs.stream.color).as_video_stream_profile()
        self._intrinsics = _intrinsics_from(rs, color.get_intrinsics())
        if c.depth:
            sensor = device.first_depth_sensor()
            try:
                self._depth_scale = float(sensor.get_depth_scale()) or 0.001
            except RuntimeError:
                self._depth_scale = 0.001
            self._align = rs.align(rs.stream.color) if c.align_depth else None
        self._clock.reset()
        self._pipeline = pipeline

    def read(self) -> Frame:
        """The next frameset; with depth, only one whose depth was taken with its colour."""
        for _ in range(2 * self.config.fps):  # framesets without a usable pair: up to 2 s
            frame = self._read_frameset()
            if frame is not None:
                return frame
        raise CameraDisconnected(f"{self.describe()}: no frameset with colour and depth in step")

    def _read_frameset(self) -> Frame | None:
        if self._pipeline is None:
            raise CameraDisconnected(f"{self.describe()} is not open")
        ok, frames = self._pipeline.try_wait_for_frames(int(self.config.frame_timeout_s * 1000))
        if not ok:
            if self.config.playback_file:
                self.close()
                if not self.config.loop:
                    raise EndOfStream(f"{self.describe()} ended")
                self.open()
                return None
            raise FrameTimeout(
                f"no frame from {self.describe()} in {self.config.frame_timeout_s} s"
            )
        color = frames.get_color_frame()
        depth = frames.get_depth_frame() if self.config.depth else None
        if not color:
            raise CameraDisconnected(f"{self.describe()} delivered a frameset without colour")
        if self.config.depth:
            # The pipeline's syncer can pair a colour frame with another instant's depth (seen
            # on the first aligned frameset after start): such a pair is skipped, never published.
            if self._align is not None:
                frames = self._align.process(frames)
                color, depth = frames.get_color_frame(), frames.get_depth_frame()
            half_period_ms = 500.0 / self.config.fps
            if not depth or abs(depth.get_timestamp() - color.get_timestamp()) > half_period_ms:
                self.mismatched += 1
                return None
        if self.config.playback_file:
            self._pace(float(color.get_timestamp()))
        arrival_ns = time.time_ns()
        return Frame(
            color=np.asanyarray(color.get_data()).copy(),
            capture_ns=self._capture_ns(color, arrival_ns),
            sequence=int(color.get_frame_number()),
            depth=np.asanyarray(depth.get_data()).copy() if depth else None,
            depth_scale_m=self._depth_scale,
            arrival_ns=arrival_ns,
        )

    def _pace(self, stamp_ms: float) -> None:
        """Release a recorded frame when a live camera would have delivered it."""
        now = time.monotonic()
        if self._replay_origin is None or stamp_ms < self._replay_origin[1]:
            self._replay_origin = (now, stamp_ms)
            return
        due = self._replay_origin[0] + (stamp_ms - self._replay_origin[1]) / 1000.0
        if due > now:
            time.sleep(due - now)
        elif now - due > 1.0:  # far behind (a stall): restart the schedule, do not burst
            self._replay_origin = (now, stamp_ms)

    def _capture_ns(self, frame: Any, arrival_ns: int) -> int:
        rs = self._rs
        stamp_ms = float(frame.get_timestamp())
        domain = frame.frame_timestamp_domain
        if not self.config.playback_file and domain in (
            rs.timestamp_domain.global_time,
            rs.timestamp_domain.system_time,
        ):
            return int(stamp_ms * 1e6)
        return self._clock.map(stamp_ms, arrival_ns)

    def close(self) -> None:
        if self._pipeline is not None:
            with contextlib.suppress(RuntimeError):  # already stopped by an unplug
                self._pipeline.stop()
            self._pipeline = None
            self._align = None


def _intrinsics_from(rs: Any, intr: Any) -> CameraIntrinsics:
    """librealsense intrinsics -> ours; the Brown-Conrady variants map to plumb_bob's 5 terms."""
    k = np.array([[intr.fx, 0.0, intr.ppx], [0.0, intr.fy, intr.ppy], [0.0, 0.0, 1.0]])
    return CameraIntrinsics(
        width=intr.width, height=intr.height, k=k, d=np.asarray(intr.coeffs[:5], float)
    )


def write_recording(
    path: str | Path,
    colors: Iterable[np.ndarray],
    fps: int,
    fx: float,
    depths: Iterable[np.ndarray] | None = None,
    serial: str = "000000000000",
    depth_units_m: float = 0.001,
) -> Path:
    """Record frames through a pyrealsense2 software device to a file RealSense can replay.

    The recording is written by librealsense's own recorder, so playing it back exercises the
    same pipeline code as a live camera. librealsense 2.59 writes rosbag2 (``.db3``) files.
    """
    rs = _rs()
    path = Path(path)
    if path.suffix != ".db3":
        raise ConfigError(f"librealsense 2.59 records to .db3 files, got {path.name}")
    colors = list(colors)
    depth_list = list(depths) if depths is not None else []
    height, width = colors[0].shape[:2]
    device = rs.software_device()
    device.register_info(rs.camera_info.serial_number, serial)
    device.register_info(rs.camera_info.name, "PLD software camera")
    color_sensor = device.add_sensor("RGB Camera")
    color_profile = color_sensor.add_video_stream(
        _video_stream(rs, rs.stream.color, rs.format.rgb8, 3, 0, width, height, fps, fx)
    )
    sensors = [(color_sensor, color_profile, colors, 3)]
    if depth_list:
        depth_sensor = device.add_sensor("Stereo Module")
        depth_sensor.add_read_only_option(rs.option.depth_units, depth_units_m)
        depth_profile = depth_sensor.add_video_stream(
            _video_stream(rs, rs.stream.depth, rs.format.z16, 2, 1, width, height, fps, fx)
        )
        sensors.append((depth_sensor, depth_profile, depth_list, 2))
        identity = rs.extrinsics()  # depth and colour share one optical frame in the recording
        identity.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        identity.translation = [0.0, 0.0, 0.0]
        depth_profile.register_extrinsics_to(color_profile, identity)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    recorder = rs.recorder(str(path), device)
    syncer = rs.syncer()
    for sensor, profile, _, _ in sensors:
        sensor.open(profile)
        sensor.start(syncer)
    start_ms = time.time() * 1000.0
    for index in range(len(colors)):
        stamp_ms = start_ms + index * 1000.0 / fps
        for sensor, profile, images, bpp in sensors:
            image = np.ascontiguousarray(images[index])
            frame = rs.software_video_frame()
            frame.pixels, frame.bpp, frame.stride = image, bpp, width * bpp
            frame.timestamp, frame.frame_number = stamp_ms, index
            frame.domain = rs.timestamp_domain.hardware_clock
            frame.profile = profile.as_video_stream_profile()
            sensor.on_video_frame(frame)
        syncer.try_wait_for_frames(10)
    for sensor, _, _, _ in sensors:
        sensor.stop()
        sensor.close()
    del recorder  # flushes and closes the file
    return path


def _video_stream(
    rs: Any, kind: Any, fmt: Any, bpp: int, uid: int, width: int, height: int, fps: int, fx: float
) -> Any:
    intr = rs.intrinsics()
    intr.width, intr.height = width, height
    intr.fx = intr.fy = fx
    intr.ppx, intr.ppy = (width - 1) / 2.0, (height - 1) / 2.0
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = kind, 0, uid
    stream.width, stream.height, stream.fps, stream.bpp, stream.fmt = width, height, fps, bpp, fmt
    stream.intrinsics = intr
    return stream
