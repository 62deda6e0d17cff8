"""vla_node: the base policy (VLA) on the robot's observations, one action per control step.

Subscribes to the robot topics (``RobotObserver``), the instruction and the episode status;
runs the backend (``builtin`` / ``onnx`` / ``openpi`` / ``expert``) on a worker thread so that
inference never blocks the executor receiving observations; publishes every chunk on
/policy/base/chunk and, for each observation, the action due at its stamp on
/policy/base/action (stamp = that observation's capture time). Chunk logic: ``PolicyRunner``.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass

from rclpy.node import Node
from std_msgs.msg import String

from pld_interfaces.msg import Action, ActionChunk, EpisodeStatus
from pld_nodes.core.config import ConfigError
from pld_nodes.core.observation import Observation
from pld_nodes.core.policy.backends import BackendConfig, make_policy
from pld_nodes.core.policy.chunking import ChunkExecutionConfig
from pld_nodes.core.policy.interface import PolicyObservation
from pld_nodes.core.policy.runner import PolicyRunner, StampedObservation
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import stamp_from_nanoseconds, stamp_from_seconds
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config
from pld_nodes.ros.robot_observer import RobotObserver


@dataclass(frozen=True)
class VlaNodeConfig:
    """Chunk execution and topics of the VLA node (the backend has its own BackendConfig)."""

    camera_names: tuple[str, ...] = ()
    privileged_state: bool = False
    execute_steps: int = 4
    ensemble_decay: float = -1.0
    """< 0: newest chunk wins; >= 0: ACT temporal-ensembling decay."""
    prefetch_steps: int = 0
    """Start the next inference when this many executable steps remain (realtime robots)."""
    instruction: str = ""
    """Used until /task/instruction is received."""

    def execution(self) -> ChunkExecutionConfig:
        decay = None if self.ensemble_decay < 0 else self.ensemble_decay
        return ChunkExecutionConfig(self.execute_steps, decay)


class VlaNode(Node):
    def __init__(self) -> None:
        super().__init__("vla")
        self.config: VlaNodeConfig = declare_config(self, VlaNodeConfig)
        self.backend: BackendConfig = declare_config(self, BackendConfig, prefix="backend.")
        self._execution = self.config.execution()
        self._runner: PolicyRunner | None = None  # built on the first observation
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vla_infer")
        self._instruction = self.config.instruction
        self._episode = 0
        self._chunk_pub = self.create_publisher(ActionChunk, "/policy/base/chunk", qos.STATE)
        self._action_pub = self.create_publisher(Action, "/policy/base/action", qos.COMMAND)
        self.create_subscription(String, "/task/instruction", self._on_instruction, qos.LATCHED)
        self.create_subscription(EpisodeStatus, "/episode/status", self._on_status, qos.LATCHED)
        if not self.backend.needs_object_names:  # fail at startup on a bad checkpoint/server
            self._build_runner(())
        RobotObserver(
            self, self._on_observation, self.config.camera_names, self.config.privileged_state
        )
        self.get_logger().info(f"backend {self.backend.kind!r}, execute {self._execution}")

    def _on_instruction(self, msg: String) -> None:
        self._instruction = msg.data

    def _on_status(self, msg: EpisodeStatus) -> None:
        self._episode = int(msg.episode_index)

    def _build_runner(self, object_state_names: tuple[str, ...]) -> PolicyRunner:
        try:
            policy = make_policy(self.backend, object_state_names)
        except (ValueError, OSError, ConnectionError) as exc:
            raise ConfigError(f"cannot build backend {self.backend.kind!r}: {exc}") from exc
        self._runner = PolicyRunner(policy, self._execution, self.config.prefetch_steps)
        self.get_logger().info(f"policy {policy.spec.name!r}: {policy.spec}")
        return self._runner

    def _on_observation(self, obs: Observation) -> None:
        if not self._instruction:  # a language-conditioned policy must not guess its task
            self.get_logger().warning(
                "no instruction yet (/task/instruction or parameter 'instruction'): holding",
                throttle_duration_sec=2.0,
            )
            return
        runner = self._runner or self._build_runner(obs.object_state_names)
        item = StampedObservation(
            obs.stamp_s,
            self._episode,
            PolicyObservation(
                proprio=obs.proprio,
                instruction=self._instruction,
                images=obs.images,
                object_state=obs.object_state,
            ),
            obs.key_ns,
        )
        action, start = runner.on_observation(item)
        if action is not None:
            self._publish_action(action, item, runner)
        if start:
            self._pool.submit(self._infer, runner)

    def _infer(self, runner: PolicyRunner) -> None:
        try:
            chunk, answered, action = runner.run_inference()
        except Exception as exc:  # a failing backend must not kill the node: the arbiter holds
            self.get_logger().error(f"inference failed: {exc!r}", throttle_duration_sec=1.0)
            return
        if chunk is not None:
            msg = ActionChunk(
                step_period=chunk.step_period,
                horizon=chunk.actions.shape[0],
                action_dim=chunk.actions.shape[1],
                actions=chunk.actions.ravel().tolist(),
                policy_version=chunk.version,
            )
            msg.header.stamp = stamp_from_seconds(chunk.t0)
            self._chunk_pub.publish(msg)
        if action is not None and answered is not None:
            self._publish_action(action, answered, runner)
        if runner.claim_retry():
            self._pool.submit(self._infer, runner)

    def _publish_action(self, action, answers: StampedObservation, runner: PolicyRunner) -> None:
        msg = Action(
            action=[float(v) for v in action],
            source="base",
            policy_version=int(runner.policy.spec.version),
        )
        msg.header.stamp = (
            stamp_from_seconds(answers.stamp_s)
            if answers.stamp_ns is None
            else stamp_from_nanoseconds(answers.stamp_ns)  # exactly the observation's stamp
        )
        self._action_pub.publish(msg)

    def destroy_node(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(VlaNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
