"""Camera core without ROS: clock mapping, calibration files, capture worker on real sources.

Sources are real: OpenCV reads video files written here, pyrealsense2 plays back recordings
made by its own software device and recorder. Unplug/replug = the file disappears and comes
back (what the reconnect loop sees from a device is the same open/read failure).
"""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pld_nodes.core.camera.calibration_files import (
    CameraIntrinsics,
    Extrinsics,
    load_camera_info,
    load_extrinsics,
    save_camera_info,
    save_extrinsics,
)
from pld_nodes.core.camera.capture import CaptureState, CaptureWorker, LatestSlot, PolicyStream
from pld_nodes.core.camera.clock import DeviceClockMapper
from pld_nodes.core.camera.frames import CameraDisconnected, Frame
from pld_nodes.core.camera.opencv_source import EndOfStream, OpenCvSource, OpenCvSourceConfig
from pld_nodes.core.config import ConfigError

W, H = 320, 240


def write_video(path: Path, frames: int = 15, fps: float = 30.0) -> Path:
    """An MJPG AVI whose frame i is dark red with a green square and i encoded in the blue."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(frames):
        bgr = np.zeros((H, W, 3), np.uint8)
        bgr[:, :, 2] = 180  # red in RGB
        bgr[:, :, 0] = 8 * i  # blue channel = 8 i: which frame this is
        bgr[40:80, 40:80] = (0, 255, 0)
        writer.write(bgr)
    writer.release()
    return path


# ---------------------------------------------------------------------- clock
@settings(max_examples=60, deadline=None)
@given(
    offset_ms=st.floats(-1e9, 1e9),
    delays_ms=st.lists(st.floats(0.5, 40.0), min_size=1, max_size=50),
)
def test_clock_mapping_is_never_later_than_arrival_and_converges(offset_ms, delays_ms) -> None:
    mapper = DeviceClockMapper(window=100)
    for k, delay in enumerate(delays_ms):
        device_ms = 1000.0 + k * 33.3
        arrival_ns = round((device_ms + offset_ms + delay) * 1e6)
        mapped = mapper.map(device_ms, arrival_ns)
        assert mapped <= arrival_ns + 1  # a capture cannot be after its arrival
        # the estimate is the true capture time plus the smallest delay seen so far
        expected = (device_ms + offset_ms + min(delays_ms[: k + 1])) * 1e6
        assert abs(mapped - expected) < 1e3 + abs(offset_ms) * 1e-6  # float rounding only


def test_clock_mapping_restarts_when_the_device_clock_jumps_back() -> None:
    mapper = DeviceClockMapper()
    mapper.map(5000.0, 10_000_000_000)
    mapper.map(100.0, 11_000_000_000)  # device reset
    assert mapper.resets == 1
    assert mapper.map(133.0, 11_033_000_000) == 11_033_000_000


# ---------------------------------------------------------------------- calibration files
def test_camera_info_and_extrinsics_round_trip(tmp_path: Path) -> None:
    intr = CameraIntrinsics(
        width=640,
        height=480,
        k=np.array([[610.0, 0, 321.5], [0, 612.0, 238.25], [0, 0, 1]]),
        d=np.array([0.1, -0.2, 0.001, 0.002, 0.05]),
        camera_name="wrist",
    )
    save_camera_info(tmp_path / "wrist.yaml", intr)
    back = load_camera_info(tmp_path / "wrist.yaml")
    np.testing.assert_allclose(back.k, intr.k)
    np.testing.assert_allclose(back.d, intr.d)
    assert (back.width, back.height, back.camera_name) == (640, 480, "wrist")
    text = (tmp_path / "wrist.yaml").read_text()
    assert "camera_matrix:" in text and "distortion_coefficients:" in text  # ROS field names

    pose = np.eye(4)
    pose[:3, :3] = cv2.Rodrigues(np.array([0.1, -0.2, 0.3]))[0]
    pose[:3, 3] = [0.05, -0.01, 0.07]
    ext = Extrinsics.from_matrix(pose, "panda_hand", "wrist_optical_frame", method="TSAI")
    save_extrinsics(tmp_path / "wrist_extrinsics.yaml", ext)
    back_ext = load_extrinsics(tmp_path / "wrist_extrinsics.yaml")
    np.testing.assert_allclose(back_ext.as_matrix(), pose, atol=1e-12)
    assert back_ext.info == {"method": "TSAI"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("image_width: 640\n", "image_height"),
        ("image_width: 640\nimage_height: 480\ncamera_matrix: {data: [1, 2]}\n", "3x3"),
        ("- a list\n", "mapping"),
        ("image_width: [\n", "invalid YAML"),
    ],
)
def test_bad_camera_info_files_are_refused_with_the_reason(tmp_path: Path, text, needle) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_camera_info(path)


def test_extrinsics_refuse_a_non_unit_quaternion(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(
        "schema: pld-extrinsics/1\nparent_frame: a\nchild_frame: b\n"
        "translation: [0, 0, 0]\nrotation_xyzw: [0, 0, 0, 2]\n"
    )
    with pytest.raises(ConfigError, match="unit quaternion"):
        load_extrinsics(path)


@settings(max_examples=40, deadline=None)
@given(
    x0=st.integers(0, 100),
    y0=st.integers(0, 100),
    size=st.integers(200, 380),
    out=st.integers(64, 300),
    point=st.tuples(st.floats(-0.3, 0.3), st.floats(-0.3, 0.3), st.floats(0.5, 2.0)),
)
def test_crop_and_resize_intrinsics_project_where_the_pixels_go(x0, y0, size, out, point) -> None:
    """A 3D point lands at (u - x0 + 0.5) * s - 0.5 in the cropped, resized image."""
    full = CameraIntrinsics.pinhole(640, 480, 45.0)
    crop = (x0, y0, size, size)
    small = full.cropped_and_resized(crop, out, out)
    p = np.asarray(point)
    u, v = (full.k @ p)[:2] / p[2]
    us, vs = (small.k @ p)[:2] / p[2]
    s = out / size
    assert us == pytest.approx((u - x0 + 0.5) * s - 0.5, abs=1e-9)
    assert vs == pytest.approx((v - y0 + 0.5) * s - 0.5, abs=1e-9)


def test_policy_stream_crops_then_resizes() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, 80:560] = 255  # the centre square is white, the sides black
    stream = PolicyStream(224, 224, (80, 0, 480, 480))
    out = stream.apply(image)
    assert out.shape == (224, 224, 3) and out.min() == 255
    with pytest.raises(ConfigError, match="does not fit"):
        PolicyStream(224, 224, (300, 0, 480, 480)).check_fits(640, 480)
    with pytest.raises(ConfigError):
        PolicyStream(0, 224)


def test_latest_slot_keeps_the_newest_and_reports_overwrites() -> None:
    slot = LatestSlot()
    frames = [
        Frame(color=np.zeros((1, 1, 3), np.uint8), capture_ns=i, sequence=i) for i in range(3)
    ]
    assert slot.put(frames[0]) is False
    assert slot.put(frames[1]) is True  # frame 0 was never taken
    assert slot.take(0.01) is frames[1]
    assert slot.take(0.01) is None


# ---------------------------------------------------------------------- OpenCV source
def test_opencv_video_file_frames_are_rgb_paced_and_loop(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.avi", frames=10, fps=50.0)
    source = OpenCvSource(OpenCvSourceConfig(device=str(path), width=W, height=H))
    source.open()
    t0 = time.monotonic()
    frames = [source.read() for _ in range(25)]  # 2.5 passes through the file
    elapsed = time.monotonic() - t0
    source.close()
    first = frames[0].color
    assert first.shape == (H, W, 3) and first.dtype == np.uint8
    red, green, blue = first[5, 5]
    assert red > 150 and green < 40 and blue < 30  # RGB order, not BGR
    assert first[60, 60, 1] > 200  # the green square
    blues = [int(f.color[5, 5, 2]) for f in frames]
    assert abs(blues[10] - blues[0]) < 6 and blues[9] > blues[0] + 50  # looped back to frame 0
    assert [f.sequence for f in frames] == list(range(1, 26))
    assert 0.40 < elapsed < 0.75  # 24 periods of 20 ms: paced like a live camera
    stamps = [f.capture_ns for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps))


def test_opencv_file_without_loop_ends_and_a_missing_file_is_a_disconnect(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.avi", frames=3)
    source = OpenCvSource(OpenCvSourceConfig(device=str(path), loop=False, fps=200.0))
    source.open()
    for _ in range(3):
        source.read()
    with pytest.raises(EndOfStream):
        source.read()
    with pytest.raises(CameraDisconnected, match="not found"):
        OpenCvSource(OpenCvSourceConfig(device=str(tmp_path / "nope.avi"))).open()
    with pytest.raises(CameraDisconnected, match="gives 320x240, configured 640x480"):
        OpenCvSource(OpenCvSourceConfig(device=str(path), width=640, height=480)).open()
    with pytest.raises(CameraDisconnected, match="does not exist"):
        OpenCvSource(OpenCvSourceConfig(device="/dev/video_pld_missing")).open()


# ---------------------------------------------------------------------- capture worker
def wait_until(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_worker_survives_an_unplug_and_reports_it(tmp_path: Path) -> None:
    path = write_video(tmp_path / "cam.avi", frames=6, fps=60.0)
    spare = tmp_path / "spare.avi"
    shutil.copy(path, spare)
    delivered: list[Frame] = []
    events: list[tuple[str, str]] = []
    worker = CaptureWorker(
        OpenCvSource(OpenCvSourceConfig(device=str(path))),
        delivered.append,
        reconnect_period_s=0.1,
        on_event=lambda level, text: events.append((level, text)),
    )
    worker.start()
    try:
        wait_until(lambda: len(delivered) >= 5)
        path.unlink()  # unplugged: the next reopen (end of the file) fails
        wait_until(lambda: worker.stats.state is CaptureState.DISCONNECTED)
        count = len(delivered)
        time.sleep(0.3)
        assert len(delivered) == count  # nothing while unplugged, and no crash
        assert "not found" in worker.stats.last_error
        shutil.copy(spare, path)  # plugged back in
        wait_until(lambda: len(delivered) >= count + 5)
        assert worker.stats.state is CaptureState.STREAMING
        assert worker.stats.reconnects >= 1
    finally:
        worker.stop()
    levels = [level for level, text in events if "disconnected" in text]
    assert levels and set(levels) == {"error"}
    assert any("streaming again" in text for _, text in events)


class _SlowDelivery:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.count = seconds, 0

    def __call__(self, frame: Frame) -> None:
        time.sleep(self.seconds)
        self.count += 1


def test_slow_delivery_drops_old_frames_but_never_slows_capture(tmp_path: Path) -> None:
    path = write_video(tmp_path / "cam.avi", frames=30, fps=100.0)
    deliver = _SlowDelivery(0.05)  # 20 Hz consumer of a 100 Hz camera
    worker = CaptureWorker(OpenCvSource(OpenCvSourceConfig(device=str(path))), deliver)
    worker.start()
    time.sleep(1.0)
    snap = worker.stats.snapshot(time.monotonic())
    worker.stop()
    assert snap.rate_hz > 80.0  # capture kept the camera's rate
    assert 10 <= deliver.count <= 25
    assert snap.dropped_behind >= snap.frames - deliver.count - 2


def test_a_failing_delivery_is_reported_and_capture_goes_on(tmp_path: Path) -> None:
    path = write_video(tmp_path / "cam.avi", frames=10, fps=100.0)
    events: list[tuple[str, str]] = []
    calls = threading.Semaphore(0)

    def deliver(frame: Frame) -> None:
        calls.release()
        raise ValueError("bad frame")

    worker = CaptureWorker(
        OpenCvSource(OpenCvSourceConfig(device=str(path))),
        deliver,
        on_event=lambda level, text: events.append((level, text)),
    )
    worker.start()
    for _ in range(5):
        assert calls.acquire(timeout=5.0)
    worker.stop()
    assert worker.stats.delivered == 0
    assert any("bad frame" in text for level, text in events if level == "error")


# ---------------------------------------------------------------------- RealSense
rs = pytest.importorskip("pyrealsense2")


@pytest.fixture(scope="module")
def realsense_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pld_nodes.core.camera.realsense_source import write_recording

    colors, depths = [], []
    for i in range(45):
        color = np.zeros((H, W, 3), np.uint8)
        color[..., 0], color[..., 1] = 200, i  # green = frame index
        colors.append(color)
        depths.append(np.full((H, W), 500 + i, np.uint16))
    path = tmp_path_factory.mktemp("rs") / "cam.db3"
    return write_recording(path, colors, fps=30, fx=300.0, depths=depths, serial="424242")


def test_realsense_recording_plays_back_with_depth_intrinsics_and_stamps(
    realsense_recording,
) -> None:
    from pld_nodes.core.camera.realsense_source import RealSenseSource, RealSenseSourceConfig

    source = RealSenseSource(
        RealSenseSourceConfig(
            playback_file=str(realsense_recording), width=W, height=H, fps=30, depth=True
        )
    )
    source.open()
    frames = [source.read() for _ in range(60)]  # past the end: the recording loops
    source.close()
    intr = source.intrinsics()
    assert intr is not None and intr.k[0, 0] == pytest.approx(300.0)
    assert intr.k[0, 2] == pytest.approx((W - 1) / 2.0)
    for f in frames:
        assert f.color.shape == (H, W, 3) and f.color[0, 0, 0] == 200  # lossless rgb8
        assert f.depth is not None and f.depth.shape == (H, W)
        assert int(f.depth[H // 2, W // 2]) == 500 + int(f.color[0, 0, 1])  # same frame
    assert f.depth_scale_m == pytest.approx(0.001)
    greens = [int(f.color[0, 0, 1]) for f in frames]
    assert any(b < a for a, b in itertools.pairwise(greens))  # it looped
    stamps = np.array([f.capture_ns for f in frames], dtype=np.float64)
    assert np.all(np.diff(stamps) > 0)
    # Playback starts with a burst (frames queued while the pipeline started); once it has
    # caught up, stamps are 1/30 s apart: the device clock mapped onto the host clock.
    assert abs(np.median(np.diff(stamps[12:30])) / 1e6 - 33.3) < 3.0
    assert abs(stamps[-1] - time.time_ns()) < 5e9  # on the host clock, not the recording's


def test_realsense_missing_recording_or_device_is_a_disconnect(tmp_path: Path) -> None:
    from pld_nodes.core.camera.realsense_source import RealSenseSource, RealSenseSourceConfig

    with pytest.raises(CameraDisconnected, match="not found"):
        RealSenseSource(RealSenseSourceConfig(playback_file=str(tmp_path / "x.db3"))).open()
    with pytest.raises(CameraDisconnected, match="not connected"):
        RealSenseSource(RealSenseSourceConfig(serial="000111222333")).open()
    with pytest.raises(ConfigError, match="either"):
        RealSenseSourceConfig(serial="1", playback_file="a.db3")
