"""Camera streaming: capture-to-publish latency and sustained rate, 2 streams of 640x480 at 30 Hz.

Usage: ``python benchmarks/bench_camera.py [--seconds 10] [--width 640 --height 480 --fps 30]``

Rows (each: two streams, each in its own process, received by one subscriber process):
- ``bare publisher (baseline)``: a pre-made rgb8 image + CameraInfo published at the rate,
  stamped when published: ROS transport only;
- ``camera_node, RealSense replay``: camera_node replaying a recording made by pyrealsense2's
  software device (rgb8, the format a D4xx delivers), the path a live RealSense takes after USB;
- ``... + policy 224x224``: the same, also publishing the cropped, resized policy stream;
- ``camera_node, OpenCV MJPG file``: camera_node decoding an MJPG video (a UVC camera's format).

Columns: sustained rate per stream (received), frames dropped (device counter gaps + delivery
behind, from the node's diagnostics), capture-to-publish p50/p99 (inside the node: from the
frame's capture stamp to the end of publish) and capture-to-receive p50/p99 (in the
subscriber: stamp to callback, both clocks the host's), and the ratio of the latter to the
baseline's. Counting starts 1 s after every stream has delivered its first frame.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BARE = """
import sys, time
import numpy as np

import rclpy
from sensor_msgs.msg import CameraInfo, Image
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import image_to_msg, stamp_from_nanoseconds
name, width, height, fps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rclpy.init()
node = rclpy.create_node("bare_" + name)
image_pub = node.create_publisher(Image, f"/cameras/{name}/image_raw", qos.SENSOR)
info_pub = node.create_publisher(CameraInfo, f"/cameras/{name}/camera_info", qos.SENSOR)
rng = np.random.default_rng(0)
image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
info = CameraInfo(width=width, height=height)
period, next_t = 1.0 / fps, time.monotonic()
try:
    while rclpy.ok():
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
        stamp = stamp_from_nanoseconds(time.time_ns())
        image_pub.publish(image_to_msg(image, stamp, name))
        info.header.stamp = stamp
        info_pub.publish(info)
except BaseException:
    pass
"""


def natural_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """Frames with texture and motion (compressible like a scene, not like a flat colour)."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    base = np.kron(base, np.ones((8, 8, 1), np.uint8))
    frames = []
    for i in range(count):
        frame = np.roll(base, 4 * i, axis=1).copy()
        frame[: height // 4, : width // 4] = (i * 7) % 255
        frames.append(frame)
    return frames


def make_sources(tmp: Path, width: int, height: int, fps: int, seconds: float) -> tuple[Path, Path]:
    """Replay sources longer than a case (warm-up + measurement): no reopen gap is measured."""
    import cv2

    from pld_nodes.core.camera.realsense_source import write_recording

    frames = natural_frames(int((seconds + 10.0) * fps), width, height)
    recording = write_recording(tmp / "rs.db3", frames, fps=fps, fx=600.0)
    video = tmp / "uvc.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(frame[..., ::-1])
    writer.release()
    return recording, video


class Receiver:
    """Subscribes to each stream (on a ``RosProbe``); records receive time - stamp and arrivals."""

    def __init__(self, domain: int, names: list[str], image_qos: object) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image

        from pld_bringup.testing import RosProbe
        from pld_nodes.ros.conversions import nanoseconds_from_stamp

        self.probe = RosProbe(domain, "bench_camera_receiver")
        node = self.probe.node
        self.counting = False
        self.seen: set[str] = set()  # streams that delivered at least one frame
        self.latency_ms: dict[str, list[float]] = {n: [] for n in names}
        self.arrivals: dict[str, list[float]] = {n: [] for n in names}
        self.diagnostics: dict[str, dict[str, str]] = {}
        for name in names:

            def on_image(msg: Image, name: str = name) -> None:
                self.seen.add(name)
                if self.counting:
                    now = time.time_ns()
                    self.latency_ms[name].append(
                        (now - nanoseconds_from_stamp(msg.header.stamp)) / 1e6
                    )
                    self.arrivals[name].append(time.monotonic())

            node.create_subscription(Image, f"/cameras/{name}/image_raw", on_image, image_qos)

        def on_diag(msg: DiagnosticArray) -> None:
            for status in msg.status:
                if status.hardware_id.startswith("camera/"):
                    self.diagnostics[status.hardware_id[7:]] = {
                        kv.key: kv.value for kv in status.values
                    }

        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)

    def close(self) -> None:
        self.probe.close()


def run_case(
    label: str, domain: int, start, names: list[str], seconds: float, image_qos: object
) -> dict:
    receiver = Receiver(domain, names, image_qos)
    stop = start(domain)
    try:
        deadline = time.monotonic() + 60.0  # warm-up: process start, discovery, first frames
        while receiver.seen != set(names) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        receiver.counting = True
        time.sleep(seconds)
        receiver.counting = False
        time.sleep(1.2)  # one more diagnostics period
    finally:
        stop()
        receiver.close()
    rates = [len(receiver.arrivals[n]) / seconds for n in names]
    latency = np.concatenate([np.asarray(receiver.latency_ms[n]) for n in names] or [np.zeros(1)])
    diag = [receiver.diagnostics.get(n, {}) for n in names]
    dropped = sum(int(d.get("dropped_device", 0)) + int(d.get("dropped_behind", 0)) for d in diag)
    publish = [(float(d["latency_p50_ms"]), float(d["latency_p99_ms"])) for d in diag if d]
    return {
        "label": label,
        "rate": min(rates) if rates else 0.0,
        "dropped": dropped if publish else None,
        "publish_p50": max(p for p, _ in publish) if publish else None,
        "publish_p99": max(p for _, p in publish) if publish else None,
        "receive_p50": float(np.percentile(latency, 50)) if latency.size else float("nan"),
        "receive_p99": float(np.percentile(latency, 99)) if latency.size else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument(
        "--receiver-depth", type=int, default=2,
        help="subscriber queue depth (2 = qos.SENSOR, what vla_node uses; the recorder uses 100)",
    )  # fmt: skip
    args = parser.parse_args()
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    image_qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=args.receiver_depth,
        reliability=ReliabilityPolicy.BEST_EFFORT,
    )
    from pld_bringup.graph import NodeLaunch
    from pld_bringup.process_launcher import GraphLauncher
    from pld_bringup.testing import ros_environment

    names = ["cam0", "cam1"]
    w, h, fps = args.width, args.height, args.fps
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.update(ros_environment(tmp / "ros"))
        print("writing the replay sources ...", flush=True)
        recording, video = make_sources(tmp, w, h, fps, args.seconds)

        def bare(domain: int):
            env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
            procs = [
                subprocess.Popen([sys.executable, "-c", BARE, n, str(w), str(h), str(fps)], env=env)
                for n in names
            ]

            def stop() -> None:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(10)

            return stop

        def cameras(**params):
            def start(domain: int):
                env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
                common = {"width": w, "height": h, "fps": float(fps)}
                nodes = [
                    NodeLaunch(
                        n, "pld_nodes", "camera_node", overrides=common | params | {"name": n}
                    )
                    for n in names
                ]
                launcher = GraphLauncher(nodes, env=env, sink=lambda _line: None)
                launcher.start()
                return launcher.stop

            return start

        realsense = {"kind": "realsense", "playback_file": str(recording), "loop": False}
        policy = {"policy_width": 224, "policy_height": 224, "policy_crop": [(w - h) // 2, 0, h, h]}
        cases = [
            ("bare publisher (baseline)", bare),
            ("camera_node, RealSense replay", cameras(**realsense)),
            ("  + policy stream 224x224", cameras(**realsense, **policy)),
            (
                "camera_node, OpenCV MJPG file",
                cameras(kind="opencv", device=str(video), loop=False),
            ),
        ]
        for domain, (label, start) in enumerate(cases, start=93):
            print(f"running: {label.strip()} ({args.seconds:g} s) ...", flush=True)
            results.append(run_case(label, domain, start, names, args.seconds, image_qos))

    base = results[0]
    print(f"\n2 streams x {w}x{h} @ {fps} Hz, {args.seconds:g} s each (2 CPU cores)\n")
    header = (
        f"{'source':32s} {'Hz/stream':>9s} {'dropped':>8s} {'capture->publish p50/p99':>26s} "
        f"{'capture->receive p50/p99':>26s} {'x baseline':>10s}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        publish = (
            f"{r['publish_p50']:.2f} / {r['publish_p99']:.2f} ms"
            if r["publish_p50"] is not None
            else "-"
        )
        dropped = str(r["dropped"]) if r["dropped"] is not None else "-"
        ratio = f"{r['receive_p50'] / base['receive_p50']:.2f}" if r is not base else "1.00"
        print(
            f"{r['label']:32s} {r['rate']:9.1f} {dropped:>8s} {publish:>26s} "
            f"{r['receive_p50']:7.2f} / {r['receive_p99']:6.2f} ms {ratio:>10s}"
        )


if __name__ == "__main__":
    main()
