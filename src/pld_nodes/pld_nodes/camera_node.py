"""camera_node: one camera (RealSense or OpenCV) -> /cameras/<name>/image_raw + camera_info.

Capture and delivery run on the worker's own threads (``core.camera.capture``); this node only
converts frames to messages and publishes them (best effort, keep last 2: a slow subscriber
never blocks the camera). Stamps are the frames' capture times on the host clock. Optional
outputs: aligned depth (``/cameras/<name>/depth/image_raw``, 16UC1 in millimetres for the
SDK's default depth units), a policy-size copy (``/cameras/<name>/policy/image_raw`` +
camera_info, cropped and resized in the delivery thread, never in the robot's control loop)
and the hand-eye extrinsics (``/cameras/<name>/extrinsics``, latched). ``/diagnostics`` reports
the state, actual rate, dropped frames, reconnects and capture-to-publish latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from pld_nodes.core.camera.calibration_files import (
    CameraIntrinsics,
    Extrinsics,
    load_camera_info,
    load_extrinsics,
)
from pld_nodes.core.camera.capture import CaptureState, CaptureWorker, FrameSource, PolicyStream
from pld_nodes.core.camera.frames import Frame
from pld_nodes.core.camera.opencv_source import OpenCvSource, OpenCvSourceConfig
from pld_nodes.core.config import ConfigError, require_finite
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import image_to_msg, stamp_from_nanoseconds, stamp_from_seconds
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config

KINDS = ("opencv", "realsense")


@dataclass(frozen=True)
class CameraNodeConfig:
    name: str = "camera"  # topics under /cameras/<name>/
    kind: str = "opencv"  # opencv | realsense
    device: str = ""  # opencv: "0", "/dev/video0" or a video file
    serial: str = ""  # realsense: serial number ("" = first found; "_123..." = "123...", below)
    playback_file: str = ""  # realsense: a recording (.bag/.db3) instead of a device
    width: int = 640
    height: int = 480
    fps: float = 30.0
    fourcc: str = ""  # opencv devices: e.g. MJPG
    depth: bool = False  # realsense: also publish depth
    align_depth: bool = True  # realsense: depth in the colour camera's pixels
    loop: bool = True  # files and recordings: start again at the end
    frame_id: str = ""  # "" = <name>_optical_frame
    camera_info_file: str = ""  # ROS camera_info YAML ("" = the device's factory calibration)
    extrinsics_file: str = ""  # pld-extrinsics/1 YAML from pld-calibrate handeye ("" = none)
    policy_width: int = 0  # > 0: also publish a policy-size copy
    policy_height: int = 0
    policy_crop: tuple[int, ...] = ()  # (x, y, w, h) of the full image, before the resize
    reconnect_period_s: float = 1.0
    frame_timeout_s: float = 1.0
    diagnostics_period_s: float = 1.0
    min_rate_fraction: float = 0.8  # WARN below this share of fps

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not self.name or "/" in self.name:
            raise ConfigError(f"name must be a non-empty topic segment, got {self.name!r}")
        if self.kind == "opencv" and not self.device:
            raise ConfigError("kind 'opencv' needs 'device' (index, /dev/videoN or a video file)")
        if (self.policy_width > 0) != (self.policy_height > 0):
            raise ConfigError("set both policy_width and policy_height (or neither)")
        if self.policy_crop and len(self.policy_crop) != 4:
            raise ConfigError(f"policy_crop must be (x, y, w, h), got {self.policy_crop}")
        require_finite("fps", self.fps, low=0.0)
        for name in ("reconnect_period_s", "frame_timeout_s", "diagnostics_period_s"):
            require_finite(name, getattr(self, name), low=0.0, low_inclusive=False)
        require_finite("min_rate_fraction", self.min_rate_fraction, low=0.0, high=1.0)

    @property
    def optical_frame(self) -> str:
        return self.frame_id or f"{self.name}_optical_frame"

    def policy_stream(self) -> PolicyStream | None:
        if self.policy_width <= 0:
            return None
        crop = tuple(self.policy_crop) if self.policy_crop else None
        return PolicyStream(self.policy_width, self.policy_height, crop)  # type: ignore[arg-type]


def make_source(c: CameraNodeConfig) -> FrameSource:
    if c.kind == "opencv":
        return OpenCvSource(
            OpenCvSourceConfig(
                device=c.device,
                width=c.width,
                height=c.height,
                fps=c.fps,
                fourcc=c.fourcc,
                loop=c.loop,
                frame_timeout_s=c.frame_timeout_s,
            )
        )
    from pld_nodes.core.camera.realsense_source import RealSenseSource, RealSenseSourceConfig

    return RealSenseSource(
        RealSenseSourceConfig(
            # A launch argument of digits becomes an int parameter; the realsense-ros convention
            # (a leading underscore keeps it a string) is accepted and stripped here.
            serial=c.serial.removeprefix("_"),
            playback_file=c.playback_file,
            width=c.width,
            height=c.height,
            fps=round(c.fps) or 30,
            depth=c.depth,
            align_depth=c.align_depth,
            loop=c.loop,
            frame_timeout_s=c.frame_timeout_s,
        )
    )


def camera_info_msg(intr: CameraIntrinsics | None, width: int, height: int) -> CameraInfo:
    """CameraInfo for ``intr``; an uncalibrated camera gets K = 0 (the ROS convention)."""
    msg = CameraInfo()
    msg.width, msg.height = width, height
    if intr is None:
        msg.distortion_model = "plumb_bob"
        msg.d = [0.0] * 5
        return msg
    msg.distortion_model = intr.distortion_model
    msg.d = [float(v) for v in intr.d]
    msg.k = [float(v) for v in intr.k.reshape(-1)]
    msg.r = [float(v) for v in intr.r.reshape(-1)]
    msg.p = [float(v) for v in intr.p.reshape(-1)]
    return msg


class CameraNode(Node):
    def __init__(self) -> None:
        super().__init__("camera")
        self.config: CameraNodeConfig = declare_config(self, CameraNodeConfig)
        c = self.config
        self._intrinsics = load_camera_info(c.camera_info_file) if c.camera_info_file else None
        if self._intrinsics is not None and (self._intrinsics.width, self._intrinsics.height) != (
            c.width,
            c.height,
        ):
            raise ConfigError(
                f"{c.camera_info_file} is for {self._intrinsics.width}x{self._intrinsics.height}, "
                f"the camera is configured {c.width}x{c.height}"
            )
        self._policy = c.policy_stream()
        if self._policy is not None:
            self._policy.check_fits(c.width, c.height)
        extrinsics = load_extrinsics(c.extrinsics_file) if c.extrinsics_file else None
        base = f"/cameras/{c.name}"
        self._image_pub = self.create_publisher(Image, f"{base}/image_raw", qos.SENSOR)
        self._info_pub = self.create_publisher(CameraInfo, f"{base}/camera_info", qos.SENSOR)
        self._depth_pub = (
            self.create_publisher(Image, f"{base}/depth/image_raw", qos.SENSOR) if c.depth else None
        )
        self._policy_pubs = (
            (
                self.create_publisher(Image, f"{base}/policy/image_raw", qos.SENSOR),
                self.create_publisher(CameraInfo, f"{base}/policy/camera_info", qos.SENSOR),
            )
            if self._policy is not None
            else None
        )
        self._diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        if extrinsics is not None:
            self._extrinsics_pub = self.create_publisher(
                TransformStamped, f"{base}/extrinsics", qos.LATCHED
            )
            self._extrinsics_pub.publish(self._transform(extrinsics))
        self._source = make_source(c)
        self._info_full: CameraInfo | None = None
        self._info_policy: CameraInfo | None = None
        self._worker = CaptureWorker(
            self._source,
            self._publish,
            reconnect_period_s=c.reconnect_period_s,
            on_event=self._log_event,
        )
        self.create_timer(c.diagnostics_period_s, self._publish_diagnostics)
        self._worker.start()
        self.get_logger().info(
            f"camera {c.name}: {self._source.describe()} {c.width}x{c.height}@{c.fps:g} -> {base}/"
            + (f", policy {c.policy_width}x{c.policy_height}" if self._policy else "")
            + (", depth" if c.depth else "")
        )

    # ------------------------------------------------------------------ delivery thread
    def _publish(self, frame: Frame) -> None:
        if not self.context.ok():  # Ctrl-C shut the context down before destroy_node ran
            return
        try:
            self._publish_frame(frame)
        except Exception:
            if self.context.ok():
                raise

    def _publish_frame(self, frame: Frame) -> None:
        c = self.config
        height, width = frame.color.shape[:2]
        if (width, height) != (c.width, c.height):
            raise ValueError(f"frame is {width}x{height}, configured {c.width}x{c.height}")
        stamp = stamp_from_nanoseconds(frame.capture_ns)
        if self._info_full is None:
            self._build_camera_infos()
        assert self._info_full is not None
        self._image_pub.publish(image_to_msg(frame.color, stamp, c.optical_frame))
        self._info_full.header.stamp = stamp
        self._info_pub.publish(self._info_full)
        if self._depth_pub is not None and frame.depth is not None:
            self._depth_pub.publish(self._depth_msg(frame, stamp))
        if self._policy is not None and self._policy_pubs is not None:
            assert self._info_policy is not None
            image_pub, info_pub = self._policy_pubs
            image_pub.publish(image_to_msg(self._policy.apply(frame.color), stamp, c.optical_frame))
            self._info_policy.header.stamp = stamp
            info_pub.publish(self._info_policy)

    def _build_camera_infos(self) -> None:
        c = self.config
        intr = self._intrinsics or self._source.intrinsics()
        self._info_full = camera_info_msg(intr, c.width, c.height)
        self._info_full.header.frame_id = c.optical_frame
        if self._policy is not None:
            scaled = self._policy.intrinsics(intr) if intr is not None else None
            self._info_policy = camera_info_msg(scaled, self._policy.width, self._policy.height)
            self._info_policy.header.frame_id = c.optical_frame

    def _depth_msg(self, frame: Frame, stamp: object) -> Image:
        assert frame.depth is not None
        depth = frame.depth
        scale_mm = frame.depth_scale_m * 1000.0
        if abs(scale_mm - 1.0) > 1e-6:  # REP 118: 16UC1 depth is in millimetres
            depth = np.clip(np.rint(depth * scale_mm), 0, 65535).astype(np.uint16)
        msg = Image()
        msg.header.stamp, msg.header.frame_id = stamp, self.config.optical_frame
        msg.height, msg.width = int(depth.shape[0]), int(depth.shape[1])
        msg.encoding, msg.is_bigendian, msg.step = "16UC1", 0, int(depth.shape[1] * 2)
        msg.data = np.ascontiguousarray(depth, dtype="<u2").tobytes()
        return msg

    def _transform(self, e: Extrinsics) -> TransformStamped:
        msg = TransformStamped()
        msg.header.stamp = stamp_from_seconds(time.time())
        msg.header.frame_id, msg.child_frame_id = e.parent_frame, e.child_frame
        t, q = msg.transform.translation, msg.transform.rotation
        t.x, t.y, t.z = (float(v) for v in e.translation)
        q.x, q.y, q.z, q.w = (float(v) for v in e.rotation_xyzw)
        return msg

    def _log_event(self, level: str, text: str) -> None:
        if not self.context.ok():
            return
        # rclpy refuses different severities from one call site: one call per level.
        if level == "error":
            self.get_logger().error(text)
        elif level == "warn":
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    # ------------------------------------------------------------------ reporting
    def _publish_diagnostics(self) -> None:
        s = self._worker.stats.snapshot(time.monotonic())
        c = self.config
        if s.state is CaptureState.STREAMING and s.rate_hz >= c.min_rate_fraction * c.fps:
            level, message = DiagnosticStatus.OK, f"streaming {s.rate_hz:.1f} Hz"
        elif s.state is CaptureState.STREAMING:
            level = DiagnosticStatus.WARN
            message = f"streaming below rate: {s.rate_hz:.1f} of {c.fps:g} Hz"
        elif s.state is CaptureState.FINISHED:
            level, message = DiagnosticStatus.WARN, "recording finished"
        elif s.state is CaptureState.CONNECTING:
            level, message = DiagnosticStatus.WARN, "connecting"
        else:
            level, message = DiagnosticStatus.ERROR, f"{s.state.value}: {s.last_error}"
        values = {
            "state": s.state.value,
            "source": s.source,
            "fps_target": f"{c.fps:g}",
            "fps_actual": f"{s.rate_hz:.2f}",
            "frames": str(s.frames),
            "published": str(s.delivered),
            "dropped_device": str(s.dropped_device),
            "dropped_behind": str(s.dropped_behind),
            "reconnects": str(s.reconnects),
            "latency_p50_ms": f"{s.latency_p50_ms:.2f}",
            "latency_p99_ms": f"{s.latency_p99_ms:.2f}",
            "last_error": s.last_error,
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: camera {c.name}",
            message=message,
            hardware_id=f"camera/{c.name}",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        out = DiagnosticArray(status=[status])
        out.header.stamp = stamp_from_seconds(time.time())
        self._diag.publish(out)

    def destroy_node(self) -> None:
        self._worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
