"""``pld-calibrate capture``: record a calibration session from the running stack.

Subscribes to ``/cameras/<camera>/image_raw`` and ``/robot/ee_pose``; each capture (Enter on
the terminal, or the ``~/capture`` service) stores the newest image with the EE pose of its
stamp into the session directory, refusing it when the arm was moving or no pose matches.
``session.yaml`` is rewritten after every sample, so an interrupted session keeps what it has.
"""

from __future__ import annotations

import contextlib
import sys
import threading

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from pld_calibration import CalibrationError
from pld_calibration.capture import PoseBuffer, StampedPose
from pld_calibration.session import Session
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import image_from_msg, nanoseconds_from_stamp

__all__ = ["CaptureNode", "run_capture"]


class CaptureNode(Node):
    def __init__(self, session: Session, tolerance_s: float, still_tolerance_m: float) -> None:
        super().__init__("calibration_capture")
        self.session = session
        self._tolerance_s = tolerance_s
        self._still_tolerance_m = still_tolerance_m
        self._poses = PoseBuffer()
        self._image: Image | None = None
        self._lock = threading.Lock()
        topic = f"/cameras/{session.camera}/image_raw"
        self.create_subscription(Image, topic, self._on_image, qos.SENSOR)
        # deep queue: every pose counts for the stillness check, none may be overwritten unread
        self.create_subscription(PoseStamped, "/robot/ee_pose", self._on_pose, qos.SENSOR_RECORDING)
        self.create_service(Trigger, "~/capture", self._on_capture)
        self.get_logger().info(f"capturing {topic} + /robot/ee_pose into {session.root}")

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self._image = msg

    def _on_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        pose = StampedPose(
            nanoseconds_from_stamp(msg.header.stamp),
            np.array([p.x, p.y, p.z]),
            np.array([q.x, q.y, q.z, q.w]),
        )
        with self._lock:
            self._poses.add(pose)

    def capture(self) -> str:
        """Store one sample; returns a line for the operator (CalibrationError when refused)."""
        with self._lock:
            image = self._image
            if image is None:
                raise CalibrationError(
                    f"no image received on /cameras/{self.session.camera}/image_raw"
                )
            stamp = nanoseconds_from_stamp(image.header.stamp)
            pose = self._poses.pose_at(
                stamp, self._tolerance_s, still_tolerance_m=self._still_tolerance_m
            )
        pose_arg = None if self.session.mode == "intrinsics" else (pose.position, pose.quat_xyzw)
        sample = self.session.add_sample(image_from_msg(image).copy(), pose_arg, stamp / 1e9)
        self.session.save()
        return f"sample {len(self.session.samples)}: {sample.image}"

    def _on_capture(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            response.message = self.capture()
            response.success = True
        except CalibrationError as exc:
            response.success, response.message = False, str(exc)
        self.get_logger().info(response.message)
        return response


def run_capture(
    session: Session, tolerance_s: float, still_tolerance_m: float, interactive: bool
) -> int:
    """Spin the node until Ctrl-C (or 'q' + Enter when interactive); returns the sample count.

    Service-only: the executor spins on this thread. Interactive: it spins on a helper thread
    while this one reads the terminal, and is shut down and joined before the node goes (an
    executor thread still running at interpreter exit aborts the process).
    """
    rclpy.init()
    node = CaptureNode(session, tolerance_s, still_tolerance_m)
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin() -> None:
        with contextlib.suppress(KeyboardInterrupt, ExternalShutdownException):
            executor.spin()

    spinner: threading.Thread | None = None
    try:
        if interactive:
            spinner = threading.Thread(target=spin, daemon=True)
            spinner.start()
            print("Enter: capture a sample (hold the arm still); q + Enter: finish", flush=True)
            for line in sys.stdin:
                if line.strip().lower() == "q":
                    break
                try:
                    print(node.capture(), flush=True)
                except CalibrationError as exc:
                    print(f"refused: {exc}", flush=True)
        else:
            spin()
    except KeyboardInterrupt:
        pass
    finally:
        executor.shutdown(timeout_sec=2.0)
        if spinner is not None:
            spinner.join(timeout=5.0)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return len(session.samples)
