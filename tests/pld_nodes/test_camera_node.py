"""camera_node in its own process over ROS, on real sources: an OpenCV video file and a
pyrealsense2 recording (made by librealsense's software device and recorder).

Checked: encoding, size, capture stamps, CameraInfo from a calibration file (and from the
RealSense factory intrinsics), the policy-size stream and its scaled CameraInfo, aligned depth
in millimetres with the colour's stamp, the latched extrinsics, diagnostics (rate, state), an
unplug/replug that is survived and reported, and configuration errors at startup.
"""

from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo, Image

from pld_bringup.graph import NodeLaunch
from pld_nodes.core.camera.calibration_files import (
    CameraIntrinsics,
    Extrinsics,
    save_camera_info,
    save_extrinsics,
)
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import image_from_msg, nanoseconds_from_stamp

from .core.test_camera_core import H, W, write_video

pytestmark = pytest.mark.ros


def camera(**params) -> NodeLaunch:
    return NodeLaunch("camera", "pld_nodes", "camera_node", overrides=params)


def _level(value: bytes | int) -> int:
    return value[0] if isinstance(value, bytes) else int(value)


def camera_values(msg: DiagnosticArray, name: str) -> dict[str, str] | None:
    for status in msg.status:
        if status.hardware_id == f"camera/{name}":
            return {kv.key: kv.value for kv in status.values} | {
                "_level": str(
                    int.from_bytes(status.level, "little")
                    if isinstance(status.level, bytes)
                    else status.level
                ),
                "_message": status.message,
            }
    return None


def test_video_file_frames_camera_info_policy_stream_and_extrinsics(
    launch_graph, ros_probe, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "front.avi", frames=30, fps=30.0)
    intr = CameraIntrinsics(
        width=W, height=H, k=np.array([[300.0, 0, 160.2], [0, 301.0, 119.7], [0, 0, 1]]),
        d=np.array([0.01, -0.02, 0.0, 0.0, 0.003]), camera_name="front",
    )  # fmt: skip
    save_camera_info(tmp_path / "front.yaml", intr)
    pose = np.eye(4)
    pose[:3, 3] = [0.5, 0.1, 0.6]
    save_extrinsics(
        tmp_path / "front_ext.yaml", Extrinsics.from_matrix(pose, "base", "front_optical_frame")
    )
    images = ros_probe.subscribe(Image, "/cameras/front/image_raw", qos.SENSOR)
    infos = ros_probe.subscribe(CameraInfo, "/cameras/front/camera_info", qos.SENSOR)
    small = ros_probe.subscribe(Image, "/cameras/front/policy/image_raw", qos.SENSOR)
    small_infos = ros_probe.subscribe(CameraInfo, "/cameras/front/policy/camera_info", qos.SENSOR)
    extrinsics = ros_probe.subscribe(TransformStamped, "/cameras/front/extrinsics", qos.LATCHED)
    diag = ros_probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    lines: list[str] = []
    launch_graph(
        [
            camera(
                name="front", device=str(video), width=W, height=H, fps=30.0,
                camera_info_file=str(tmp_path / "front.yaml"),
                extrinsics_file=str(tmp_path / "front_ext.yaml"),
                policy_width=96, policy_height=96, policy_crop=[40, 0, 240, 240],
            )
        ],
        sink=lines.append,
    )  # fmt: skip
    try:
        got = images.wait_for(count=20, timeout_s=60.0)
        first = got[0]
        assert (first.width, first.height, first.encoding) == (W, H, "rgb8")
        assert first.header.frame_id == "front_optical_frame"
        rgb = image_from_msg(first)
        assert rgb[5, 5, 0] > 150 and rgb[60, 60, 1] > 200  # red background, green square
        stamps = [nanoseconds_from_stamp(m.header.stamp) for m in got]
        assert all(b > a for a, b in itertools.pairwise(stamps))
        assert abs(stamps[-1] - time.time_ns()) < 2e9  # capture time on the host clock

        stamp_set = set(stamps)
        info = infos.wait_for(lambda m: nanoseconds_from_stamp(m.header.stamp) in stamp_set)[0]
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), intr.k)
        np.testing.assert_allclose(info.d, intr.d)
        assert (info.width, info.height, info.distortion_model) == (W, H, "plumb_bob")

        policy = small.wait_for(lambda m: nanoseconds_from_stamp(m.header.stamp) in stamp_set)[0]
        assert (policy.width, policy.height) == (96, 96)
        policy_info = small_infos.wait_for()[0]
        expected = intr.cropped_and_resized((40, 0, 240, 240), 96, 96)
        np.testing.assert_allclose(np.reshape(policy_info.k, (3, 3)), expected.k)

        tf = extrinsics.wait_for(timeout_s=10.0)[0]
        assert (tf.header.frame_id, tf.child_frame_id) == ("base", "front_optical_frame")
        assert tf.transform.translation.x == pytest.approx(0.5)

        report = diag.wait_for(
            lambda m: (v := camera_values(m, "front")) is not None and int(v["frames"]) > 40,
            timeout_s=20.0,
        )[0]
        values = camera_values(report, "front")
        assert values is not None and values["state"] == "streaming"
        assert 25.0 < float(values["fps_actual"]) < 35.0
        assert float(values["latency_p50_ms"]) < 30.0
    finally:
        print("\n".join(lines[-30:]))


def test_unplug_and_replug_are_survived_and_reported(
    launch_graph, ros_probe, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "wrist.avi", frames=15, fps=30.0)
    spare = shutil.copy(video, tmp_path / "spare.avi")
    images = ros_probe.subscribe(Image, "/cameras/wrist/image_raw", qos.SENSOR)
    diag = ros_probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    lines: list[str] = []
    graph = launch_graph(
        [camera(name="wrist", device=str(video), width=W, height=H, reconnect_period_s=0.2,
                diagnostics_period_s=0.25)],
        sink=lines.append,
    )  # fmt: skip
    try:
        images.wait_for(count=5, timeout_s=60.0)
        video.unlink()  # the device is gone
        down = diag.wait_for(
            lambda m: (v := camera_values(m, "wrist")) is not None and v["state"] == "disconnected",
            timeout_s=15.0,
        )[0]
        values = camera_values(down, "wrist")
        assert values is not None and values["_level"] == str(
            DiagnosticStatus.ERROR[0]
            if isinstance(DiagnosticStatus.ERROR, bytes)
            else DiagnosticStatus.ERROR
        )
        assert "not found" in values["last_error"]
        assert graph.running() == ["camera"]
        before = len(images.items)
        shutil.copy(spare, video)  # plugged back in
        images.wait_for(count=before + 10, timeout_s=20.0)
        back = diag.wait_for(
            lambda m: (
                (v := camera_values(m, "wrist")) is not None
                and v["state"] == "streaming"
                and int(v["reconnects"]) >= 1
            ),
            timeout_s=15.0,
        )
        assert back
        assert any("disconnected" in line for line in lines)
        assert any("streaming again" in line for line in lines)
    finally:
        print("\n".join(lines[-30:]))


def test_realsense_recording_colour_depth_and_factory_intrinsics(
    launch_graph, ros_probe, tmp_path: Path
) -> None:
    pytest.importorskip("pyrealsense2")
    from pld_nodes.core.camera.realsense_source import write_recording

    colors, depths = [], []
    for i in range(60):
        color = np.zeros((H, W, 3), np.uint8)
        color[..., 0], color[..., 1] = 200, i
        colors.append(color)
        depths.append(np.full((H, W), 500 + i, np.uint16))
    recording = write_recording(tmp_path / "d435.db3", colors, fps=30, fx=310.0, depths=depths)
    images = ros_probe.subscribe(Image, "/cameras/d435/image_raw", qos.SENSOR)
    depth = ros_probe.subscribe(Image, "/cameras/d435/depth/image_raw", qos.SENSOR)
    infos = ros_probe.subscribe(CameraInfo, "/cameras/d435/camera_info", qos.SENSOR)
    lines: list[str] = []
    launch_graph(
        [camera(name="d435", kind="realsense", playback_file=str(recording), width=W, height=H,
                fps=30.0, depth=True)],
        sink=lines.append,
    )  # fmt: skip
    try:
        got = images.wait_for(count=10, timeout_s=60.0)
        depth.wait_for(count=10, timeout_s=20.0)
        by_stamp = {nanoseconds_from_stamp(m.header.stamp): m for m in depth.items}
        paired = 0
        for msg in got:
            d = by_stamp.get(nanoseconds_from_stamp(msg.header.stamp))
            if d is None:
                continue
            assert (d.encoding, d.width, d.height) == ("16UC1", W, H)
            mm = np.frombuffer(bytes(d.data), dtype="<u2").reshape(H, W)
            assert int(mm[H // 2, W // 2]) == 500 + int(image_from_msg(msg)[0, 0, 1])
            paired += 1
        assert paired >= 5
        info = infos.wait_for()[0]
        assert info.k[0] == pytest.approx(310.0) and info.k[2] == pytest.approx((W - 1) / 2)
    finally:
        print("\n".join(lines[-30:]))


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"kind": "gige", "device": "0"}, "kind must be one of"),
        ({"device": "x.avi", "policy_width": 96}, "policy_height"),
        ({"device": "x.avi", "camera_info_file": "CAMINFO"}, "is for 640x480"),
    ],
)
def test_configuration_errors_stop_the_node_at_startup(
    launch_graph, tmp_path: Path, params, needle
) -> None:
    if params.get("camera_info_file") == "CAMINFO":
        save_camera_info(tmp_path / "c.yaml", CameraIntrinsics.pinhole(640, 480, 45.0))
        params = params | {"camera_info_file": str(tmp_path / "c.yaml"), "width": W, "height": H}
        needle = "is for 640x480, the camera is configured 320x240"
    lines: list[str] = []
    graph = launch_graph([camera(**params)], sink=lines.append)
    deadline = time.monotonic() + 60
    while graph.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    ended = graph.poll()
    assert ended and ended[0].returncode == 2, lines[-10:]
    assert any(needle in line for line in lines), lines[-10:]
