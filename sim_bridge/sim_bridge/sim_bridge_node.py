"""sim_bridge_node: a simulated Franka task on the real robot's topics and episode services.

Publishes cameras, joint states, EE pose, gripper, (privileged) object state, instruction and
episode status; consumes /robot/command (pld_interfaces/Action) exactly like the Franka driver.
All decisions live in ``sim_bridge.bridge.SimBridge``; this file converts messages and clocks.
"""

from __future__ import annotations

import time

from geometry_msgs.msg import PoseStamped, WrenchStamped
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from pld_interfaces.msg import Action, EpisodeStatus, StateVector
from pld_interfaces.srv import ResetEpisode
from pld_nodes.core.actions import InvalidAction
from pld_nodes.core.config import ConfigError
from pld_nodes.core.observation import ARM_JOINT_NAMES, FINGER_JOINT_NAMES, object_state_names
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import (
    image_to_msg,
    joint_state,
    pinhole_camera_info,
    pose_stamped,
    stamp_from_seconds,
    wrench_stamped,
)
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config
from sim_bridge.bridge import EpisodeState, SimBridge, SimBridgeConfig, StepResult
from sim_bridge.envs import make_env
from sim_bridge.envs.conventions import PROPRIO_LAYOUT

# The sim publishes poses in its world frame (robot base axis-aligned at a fixed offset); the
# Franka driver publishes in the robot base frame. Policies consume numbers, not frames.
WORLD_FRAME = "world"
EE_FRAME = "ee"  # the wrist force/torque sensor's frame
LOCKSTEP_REPUBLISH_S = 0.5
"""Lockstep: re-send the current observation after this long without a command."""


class SimBridgeNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_bridge")
        cfg: SimBridgeConfig = declare_config(self, SimBridgeConfig)
        self.config = cfg
        try:
            env = make_env(
                cfg.task,
                camera_names=cfg.camera_names,
                image_size=(cfg.image_height, cfg.image_width),
                render=bool(cfg.camera_names),
                fast_render=cfg.fast_render,
                privileged_state=cfg.privileged_state,
                control_freq=cfg.control_rate_hz,
                max_steps=cfg.max_steps,
                seed=cfg.seed,
            )
        except ValueError as exc:  # unknown task, bad camera name, bad size
            raise ConfigError(f"cannot build sim task {cfg.task!r}: {exc}") from exc
        self.core = SimBridge(env, cfg)
        self._cams = {
            name: (
                self.create_publisher(Image, f"/cameras/{name}/image_raw", qos.SENSOR),
                self.create_publisher(CameraInfo, f"/cameras/{name}/camera_info", qos.SENSOR),
            )
            for name in cfg.camera_names
        }
        model = env.unwrapped.sim.model
        self._fovy = {c: float(model.cam_fovy[model.camera_name2id(c)]) for c in cfg.camera_names}
        self._object_fields = list(object_state_names(env.unwrapped.object_names))
        self._joints = self.create_publisher(JointState, "/robot/joint_states", qos.SENSOR)
        self._ee = self.create_publisher(PoseStamped, "/robot/ee_pose", qos.SENSOR)
        self._wrench = self.create_publisher(WrenchStamped, "/robot/wrench", qos.SENSOR)
        self._gripper = self.create_publisher(JointState, "/robot/gripper", qos.SENSOR)
        self._objects = self.create_publisher(StateVector, "/sim/object_state", qos.SENSOR)
        self._status = self.create_publisher(EpisodeStatus, "/episode/status", qos.EPISODE_STATUS)
        self._instruction = self.create_publisher(String, "/task/instruction", qos.LATCHED)
        self._clock_pub = self.create_publisher(Clock, "/clock", 10) if cfg.publish_clock else None
        self.create_subscription(Action, "/robot/command", self._on_command, qos.COMMAND)
        self.create_service(ResetEpisode, "/episode/reset", self._on_reset)
        self.create_service(Trigger, "/episode/check_success", self._on_check_success)
        self._last_publish = 0.0
        if cfg.step_mode == "realtime":
            self.create_timer(cfg.step_period_s, self._on_tick)
        else:
            self.create_timer(LOCKSTEP_REPUBLISH_S / 2, self._on_lockstep_idle)
        if cfg.reset_on_start:
            self._reset(None)
        self.get_logger().info(
            f"task {cfg.task!r} ({cfg.step_mode}, {cfg.control_rate_hz:g} Hz, cameras "
            f"{list(cfg.camera_names)} at {cfg.image_height}x{cfg.image_width})"
        )

    def destroy_node(self) -> None:
        self.core.env.close()  # frees the GL context before the interpreter tears EGL down
        super().destroy_node()

    # -- clocks ----------------------------------------------------------------------------
    def _stamp(self):
        # Lockstep has no wall-clock meaning: step k is stamped k * period, so chunked policies
        # map their actions to steps exactly.
        if self.config.publish_clock or self.config.step_mode == "lockstep":
            return stamp_from_seconds(self.core.sim_time_s)
        return self.get_clock().now().to_msg()

    # -- inputs ----------------------------------------------------------------------------
    def _on_command(self, msg: Action) -> None:
        try:
            action = self.core.submit_command(msg.action, time.monotonic())
        except InvalidAction as exc:
            self.get_logger().error(
                f"refused command from {msg.source or 'unknown'!r} ({exc}); holding "
                f"[{self.core.rejected_commands} refused so far]",
                throttle_duration_sec=1.0,
            )
            return
        if self.config.step_mode == "lockstep" and self.core.snapshot.state is EpisodeState.RUNNING:
            self._publish_step(self.core.step(action))

    def _on_lockstep_idle(self) -> None:
        # Sensor topics are best effort: if the one observation a lockstep consumer waits for
        # was lost (e.g. published before its subscription matched), both sides would wait
        # forever. Re-sending the same-stamp observation lets it complete; consumers drop
        # stamps they already have.
        if time.monotonic() - self._last_publish >= LOCKSTEP_REPUBLISH_S:
            self._publish_observation()

    def _on_tick(self) -> None:
        if self.core.snapshot.state is EpisodeState.RUNNING:
            action, held = self.core.next_action(time.monotonic())
            self._publish_step(self.core.step(action, held))
        else:
            self._publish_observation()  # keep the robot's streams alive between episodes

    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response):
        try:
            self._reset(request.seed)
        except Exception as exc:  # a reset must answer, never kill the bridge
            self.get_logger().error(f"reset failed: {exc!r}")
            response.success, response.message = False, f"reset failed: {exc}"
            return response
        snap = self.core.snapshot
        response.success, response.message = True, f"episode {snap.index} running"
        response.seed, response.episode_index = snap.seed, snap.index
        response.instruction = snap.instruction
        return response

    def _on_check_success(self, _request: Trigger.Request, response: Trigger.Response):
        response.success = self.core.check_success()
        response.message = self.core.snapshot.reason
        return response

    def _reset(self, seed: int | None) -> None:
        self.core.reset(seed)
        self._instruction.publish(String(data=self.core.snapshot.instruction))
        self._publish_observation()
        snap = self.core.snapshot
        self.get_logger().info(f"episode {snap.index} (seed {snap.seed}): {snap.instruction!r}")

    # -- outputs ---------------------------------------------------------------------------
    def _publish_step(self, result: StepResult) -> None:
        self._publish_observation()
        if result.ended:
            snap = self.core.snapshot
            self.get_logger().info(
                f"episode {snap.index} ended after {snap.step} steps: {snap.reason}"
            )

    def _publish_observation(self) -> None:
        obs = self.core.obs
        if obs is None:
            return
        self._last_publish = time.monotonic()
        stamp = self._stamp()
        if self._clock_pub is not None:
            self._clock_pub.publish(Clock(clock=stamp))
        proprio = obs["proprio"]
        joints = proprio[PROPRIO_LAYOUT["joint_pos"]]
        fingers = proprio[PROPRIO_LAYOUT["gripper_qpos"]]
        self._joints.publish(
            joint_state(ARM_JOINT_NAMES + FINGER_JOINT_NAMES, [*joints, *fingers], stamp)
        )
        self._ee.publish(
            pose_stamped(
                proprio[PROPRIO_LAYOUT["eef_pos"]],
                proprio[PROPRIO_LAYOUT["eef_quat_xyzw"]],
                stamp,
                WORLD_FRAME,
            )
        )
        width = float(abs(fingers[0]) + abs(fingers[1]))
        self._gripper.publish(joint_state(["gripper_width"], [width], stamp))
        wrench = getattr(self.core.env.unwrapped, "ee_wrench", None)
        if wrench is not None:
            self._wrench.publish(wrench_stamped(wrench(), stamp, EE_FRAME))
        if self.config.privileged_state and "object_state" in obs:
            msg = StateVector(
                names=self._object_fields, data=[float(v) for v in obs["object_state"]]
            )
            msg.header.stamp, msg.header.frame_id = stamp, WORLD_FRAME
            self._objects.publish(msg)
        for name, (image_pub, info_pub) in self._cams.items():
            image = obs["images"][name]
            frame = f"{name}_optical_frame"
            image_pub.publish(image_to_msg(image, stamp, frame))
            info_pub.publish(
                pinhole_camera_info(
                    self._fovy[name],
                    image.shape[0],
                    image.shape[1],
                    stamp,
                    frame,
                )
            )
        self._publish_status(stamp)

    def _publish_status(self, stamp) -> None:
        snap = self.core.snapshot
        msg = EpisodeStatus(
            episode_index=max(snap.index, 0),
            state=snap.state.value,
            reason=snap.reason,
            step=snap.step,
            seed=snap.seed,
            success=snap.success,
            task=self.config.task,
            instruction=snap.instruction,
        )
        msg.header.stamp = stamp
        self._status.publish(msg)


def main(args: list[str] | None = None) -> int:
    # One thread (run_node's default): the renderer's GL context belongs to the thread that
    # created the env.
    return run_node(SimBridgeNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
