"""Recording a session from the running stack: poses paired by stamp, a moving arm refused,
and a session captured over ROS (synthetic renders published as camera frames) calibrates to
the ground truth."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from pld_calibration import CalibrationError
from pld_calibration.capture import PoseBuffer, StampedPose
from pld_calibration.detect import detect_all
from pld_calibration.handeye import calibrate_hand_eye
from pld_calibration.intrinsics import calibrate_intrinsics
from pld_calibration.session import Session, load_session
from pld_calibration.synthetic import load_ground_truth
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import image_to_msg, pose_stamped, stamp_from_nanoseconds


def pose(t_ms: float, x: float = 0.5) -> StampedPose:
    return StampedPose(int(t_ms * 1e6), np.array([x, 0.0, 0.3]), np.array([0.0, 0.0, 0.0, 1.0]))


def test_pose_buffer_pairs_by_stamp_and_refuses_motion() -> None:
    buffer = PoseBuffer()
    for t in range(0, 1000, 10):
        buffer.add(pose(t))
    assert buffer.pose_at(int(503e6)).stamp_ns == int(500e6)
    with pytest.raises(CalibrationError, match="no EE pose within"):
        buffer.pose_at(int(1100e6))
    moving = PoseBuffer()
    for t in range(0, 1000, 10):
        moving.add(pose(t, x=0.5 + t * 1e-5))  # 10 mm/s
    with pytest.raises(CalibrationError, match="moved"):
        moving.pose_at(int(500e6))
    with pytest.raises(CalibrationError, match="no EE pose received"):
        PoseBuffer().pose_at(0)


@pytest.mark.ros
def test_capture_over_ros_records_a_session_that_calibrates(
    eye_in_hand_session: Session, ros_probe, ros_domain: int, tmp_path: Path
) -> None:
    out = tmp_path / "captured"
    env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain))
    cmd = [sys.executable, "-m", "pld_calibration.cli", "capture", "--camera", "wrist"]
    proc = subprocess.Popen(
        [*cmd, "--out", str(out), "--service-only"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        images = ros_probe.publisher(Image, "/cameras/wrist/image_raw", qos.SENSOR)
        poses = ros_probe.publisher(PoseStamped, "/robot/ee_pose", qos.SENSOR)
        ros_probe.wait_for_subscribers(images, timeout_s=60.0)
        ros_probe.wait_for_subscribers(poses, timeout_s=30.0)
        truth_poses = eye_in_hand_session.ee_poses()
        start_ns = time.time_ns()
        for index, (name, rgb) in enumerate(eye_in_hand_session.images()):
            sample = eye_in_hand_session.samples[index]
            stamp_ns = start_ns + index * 1_000_000_000  # views 1 s apart (the arm moves between)
            for _ in range(3):  # best effort: send until it is surely there
                for dt_ms in (-100, -50, 0, 50, 100):  # the arm holds still around the image
                    stamp = stamp_from_nanoseconds(stamp_ns + int(dt_ms * 1e6))
                    poses.publish(
                        pose_stamped(sample.ee_position, sample.ee_quat_xyzw, stamp, "base")
                    )
                images.publish(image_to_msg(rgb, stamp_from_nanoseconds(stamp_ns), "wrist"))
                time.sleep(0.05)
            reply = ros_probe.call(Trigger, "/calibration_capture/capture", Trigger.Request())
            assert reply.success, reply.message
            assert name in truth_poses
        # a moving arm is refused
        stamp_ns = start_ns + 100 * 1_000_000_000
        for k in range(5):
            stamp = stamp_from_nanoseconds(stamp_ns + int((k - 2) * 50e6))
            poses.publish(pose_stamped([0.5 + 0.002 * k, 0.0, 0.3], [0, 0, 0, 1], stamp, "base"))
        images.publish(image_to_msg(rgb, stamp_from_nanoseconds(stamp_ns), "wrist"))
        time.sleep(0.1)
        refused = ros_probe.call(Trigger, "/calibration_capture/capture", Trigger.Request())
        assert not refused.success and "moved" in refused.message
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert f"{len(eye_in_hand_session.samples)} samples in" in output

    captured = load_session(out)
    assert len(captured.samples) == len(eye_in_hand_session.samples)
    detections = detect_all(captured.images(), captured.board)
    intrinsics = calibrate_intrinsics(detections, "wrist").intrinsics
    result = calibrate_hand_eye(
        "eye_in_hand", captured.ee_poses(), detections.detections, intrinsics, captured.board
    )
    truth = load_ground_truth(eye_in_hand_session.root)
    assert truth is not None
    err = truth.hand_eye_errors(result.transform)
    assert err["translation_mm"] < 2.0 and err["rotation_deg"] < 0.5, err
