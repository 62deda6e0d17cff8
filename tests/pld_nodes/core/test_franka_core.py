"""The Franka driver's ROS-free core: kinematics, IK step, joint tracker, shared state block."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pld_nodes.core.franka.kinematics import (
    FR3_JOINT_LOWER,
    FR3_JOINT_UPPER,
    IkConfig,
    ee_offset,
    ee_point,
    ik_step,
    jacobian_at,
    joint_frames,
    quat_xyzw,
)
from pld_nodes.core.franka.shared import SharedState
from pld_nodes.core.franka.tracker import JointTracker, TrackerLimits

HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
OFFSET = np.array([0.0, 0.0, 0.2104])  # a hand's TCP: flange 0.107 + 0.1034 along link 7's z

joints = st.lists(st.floats(-0.4, 0.4), min_size=7, max_size=7).map(lambda d: HOME + np.array(d))


@settings(max_examples=50, deadline=None)
@given(q=joints)
def test_jacobian_matches_finite_differences(q) -> None:
    jac = jacobian_at(q, ee_point(q, OFFSET))
    eps = 1e-6
    for i in range(7):
        dq = np.zeros(7)
        dq[i] = eps
        numeric = (ee_point(q + dq, OFFSET) - ee_point(q - dq, OFFSET)) / (2 * eps)
        np.testing.assert_allclose(jac[:3, i], numeric, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(q=joints, step=st.lists(st.floats(-0.005, 0.005), min_size=3, max_size=3))
def test_ik_step_moves_the_ee_by_the_delta(q, step) -> None:
    delta = np.array([*step, 0.0, 0.0, 0.0])
    target = ik_step(q, ee_point(q, OFFSET), delta, IkConfig(damping=1e-3, joint_margin_rad=0.0))
    moved = ee_point(target, OFFSET) - ee_point(q, OFFSET)
    np.testing.assert_allclose(moved, step, atol=1.5e-4)  # linearisation error: < 2 % of the step
    r0, r1 = joint_frames(q)[-1][:3, :3], joint_frames(target)[-1][:3, :3]
    assert np.linalg.norm(r1 @ r0.T - np.eye(3)) < 1e-3  # orientation kept


def test_ik_targets_stay_inside_the_joint_limits() -> None:
    q = np.array(FR3_JOINT_UPPER) - 0.01
    q[3] = -0.5
    target = ik_step(q, ee_point(q, OFFSET), np.array([0.2, 0.2, 0.2, 0.5, 0.5, 0.5]))
    assert np.all(target <= np.array(FR3_JOINT_UPPER) - 0.05 + 1e-12)
    assert np.all(target >= np.array(FR3_JOINT_LOWER) + 0.05 - 1e-12)


def test_ee_offset_inverts_ee_point() -> None:
    np.testing.assert_allclose(ee_offset(HOME, ee_point(HOME, OFFSET)), OFFSET, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    goals=st.lists(st.lists(st.floats(-1.0, 1.0), min_size=7, max_size=7), min_size=1, max_size=5),
    dts=st.lists(st.sampled_from([0.0005, 0.001, 0.001, 0.001, 0.003, 0.016]), min_size=50,
                 max_size=50),
)  # fmt: skip
def test_tracker_never_exceeds_its_velocity_and_acceleration_limits(goals, dts) -> None:
    limits = TrackerLimits()
    tracker = JointTracker(HOME, limits)
    for k, dt in enumerate(dts * 4):
        goal = HOME + np.asarray(goals[(k // 40) % len(goals)])
        v_before = tracker.v.copy()
        tracker.step(goal, dt)
        assert np.all(np.abs(tracker.v) <= np.asarray(limits.max_velocity) + 1e-12)
        assert np.all(np.abs(tracker.v - v_before) <= limits.max_acceleration * dt + 1e-9)


def test_tracker_settles_on_the_goal_and_stop_goal_brakes() -> None:
    tracker = JointTracker(HOME)
    goal = HOME + 0.1
    for _ in range(2000):
        tracker.step(goal, 0.001)
    np.testing.assert_allclose(tracker.q, goal, atol=1e-4)
    assert np.max(np.abs(tracker.v)) < 1e-3
    for _ in range(300):  # moving fast towards a far goal, then "hold"
        tracker.step(HOME + 1.0, 0.001)
    stop = tracker.stop_goal()
    for _ in range(1500):
        tracker.step(stop, 0.001)
    assert np.max(np.abs(tracker.v)) < 1e-3
    np.testing.assert_allclose(tracker.q, stop, atol=1e-3)


def test_shared_state_round_trip_between_two_handles() -> None:
    owner = SharedState()
    reader = SharedState(owner.name)
    try:
        t = np.eye(4)
        t[:3, 3] = [0.3, 0.1, 0.5]
        owner.write(q=HOME, O_T_EE=t.reshape(-1, order="F"), wrench=np.arange(6.0), cycles=42,
                    control_state=1, robot_mode=2)  # fmt: skip
        snap = reader.read()
        np.testing.assert_array_equal(snap.q, HOME)
        np.testing.assert_array_equal(snap.ee_pose, t)
        assert (snap.cycles, snap.control_state_name, snap.robot_mode) == (42, "controlling", 2)
        owner.array[0] += 1  # a writer that died mid-update: readers must not hang
        with pytest.raises(TimeoutError):
            reader.read(timeout_s=0.01)
    finally:
        reader.close()
        owner.close()


@settings(max_examples=200, deadline=None)
@given(rotvec=st.lists(st.floats(-3.1, 3.1), min_size=3, max_size=3))
def test_quaternion_of_a_rotation_matches_scipy(rotvec) -> None:
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_rotvec(rotvec)
    got, ref = quat_xyzw(rot.as_matrix()), rot.as_quat()  # scipy: (x, y, z, w)
    assert min(np.abs(got - ref).max(), np.abs(got + ref).max()) < 1e-9  # q and -q: same
    # the published EE pose of franka-sim's home: tool pointing down (w ~ 0 branch)
    down = joint_frames(HOME)[-1][:3, :3]
    np.testing.assert_allclose(Rotation.from_quat(quat_xyzw(down)).as_matrix(), down, atol=1e-9)
