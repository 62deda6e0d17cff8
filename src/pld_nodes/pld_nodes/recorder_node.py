"""recorder_node: every step of every episode into the Zarr episode store, off the control path.

Pairs /arbiter/step records with the robot observation of the same stamp (``RobotObserver``,
cameras and privileged state as configured), stores each step's action as the safety monitor
executed it (/robot/command, same stamp: made safe or held), keeps them per episode in memory,
and on /episode/lifecycle ``committed`` hands the episode to a background writer thread that commits
it atomically (``EpisodeStore.add_episode``); ``discarded`` drops it. A store written by
another schema or with different step keys is refused at startup (exit code 2, message says
what differs); a failed write (disk full) is logged as an error and reported on /diagnostics,
and every earlier episode stays readable.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from pld_interfaces.msg import Action, ArbiterStep, EpisodeStatus
from pld_nodes import __version__
from pld_nodes.core.config import ConfigError
from pld_nodes.core.episode_store import EpisodeStore, EpisodeStoreError
from pld_nodes.core.observation import Observation
from pld_nodes.core.recording import (
    BackgroundWriter,
    StepRecord,
    StepSynchronizer,
    build_episode,
    with_executed_commands,
)
from pld_nodes.episode_manager_node import LIFECYCLE_QOS
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import nanoseconds_from_stamp
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config
from pld_nodes.ros.robot_observer import RobotObserver

MAX_EXECUTED = 4096
"""Executed commands kept for pairing (~3 min at 20 Hz: longer than any episode's commit)."""

BASE_KEYS = (
    "action", "base_action", "phase", "proprio", "residual_action", "residual_version",
    "reward", "stamp", "step",
)  # fmt: skip


@dataclass(frozen=True)
class RecorderConfig:
    store_path: str = ""
    camera_names: tuple[str, ...] = ()
    privileged_state: bool = True
    stamp_tolerance_s: float = 0.001
    commit_grace_s: float = 2.0
    """After the lifecycle commits an episode, wait up to this long for its last steps and
    observations (separate topics arrive in any order); what is still missing then is
    recorded as missing."""
    diagnostics_period_s: float = 1.0
    executed_command_topic: str = "/robot/command"
    """The safety monitor's output: actions are stored as executed (made safe or held), not as
    the arbiter proposed them; empty = store the arbiter's actions."""

    def __post_init__(self) -> None:
        if not self.store_path:
            raise ConfigError("store_path is required")

    def expected_keys(self) -> list[str]:
        keys = list(BASE_KEYS)
        if self.privileged_state:
            keys.append("object_state")
        keys += [f"images/{c}" for c in self.camera_names]
        return sorted(keys)


def open_store(cfg: RecorderConfig) -> EpisodeStore:
    """Create the store, or resume it after checking it holds the same kind of episodes."""
    path = Path(cfg.store_path)
    try:
        if not path.exists():
            return EpisodeStore.create(path, software_version=__version__)
        store = EpisodeStore.open(path, mode="a")
    except EpisodeStoreError as exc:
        raise ConfigError(f"cannot use episode store {path}: {exc}") from exc
    if store.n_episodes and store.keys != cfg.expected_keys():
        have, want = set(store.keys), set(cfg.expected_keys())
        raise ConfigError(
            f"episode store {path} holds different step data: only in the store "
            f"{sorted(have - want)}, only in this recorder's config {sorted(want - have)}; "
            "record into a new store or match the camera/privileged-state config"
        )
    return store


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        self.config: RecorderConfig = declare_config(self, RecorderConfig)
        c = self.config
        self.store = open_store(c)
        self.sync = StepSynchronizer(round(c.stamp_tolerance_s * 1e9))
        self.writer = BackgroundWriter(self.store, self._on_written)
        self.discarded = 0
        self._to_finish: deque[tuple[EpisodeStatus, float]] = deque()
        self._last_written: dict[str, Any] = {}
        self._diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(ArbiterStep, "/arbiter/step", self._on_step, qos.STATE)
        self._executed: dict[int, tuple[np.ndarray, bool]] = {}
        self.safety_changed_steps = 0
        if c.executed_command_topic:
            self.create_subscription(Action, c.executed_command_topic, self._on_executed, qos.STATE)
        self.create_subscription(
            EpisodeStatus, "/episode/lifecycle", self._on_lifecycle, LIFECYCLE_QOS
        )
        RobotObserver(
            self,
            self._on_observation,
            c.camera_names,
            c.privileged_state,
            qos_profile=qos.SENSOR_RECORDING,
        )
        self.create_timer(c.diagnostics_period_s, self._publish_diagnostics)
        self.create_timer(0.05, self._finish_ready)
        self.get_logger().info(
            f"recording to {c.store_path} ({self.store.n_episodes} episodes already there)"
        )

    def _on_observation(self, obs: Observation) -> None:
        self.sync.add_observation(obs.key_ns, obs)

    def _on_step(self, msg: ArbiterStep) -> None:
        self.sync.add_step(
            StepRecord(
                stamp_ns=nanoseconds_from_stamp(msg.header.stamp),
                episode=int(msg.episode_index),
                step=int(msg.step),
                mode=msg.mode,
                t_base=int(msg.t_base),
                phase=int(msg.phase),
                xi=float(msg.xi),
                alpha=float(msg.alpha),
                base_action=np.asarray(msg.base_action, np.float32),
                residual_action=np.asarray(msg.residual_action, np.float32),
                action=np.asarray(msg.action, np.float32),
                base_version=int(msg.base_version),
                residual_version=int(msg.residual_version),
                hold_reason=msg.hold_reason,
            )
        )

    def _on_executed(self, msg: Action) -> None:
        self._executed[nanoseconds_from_stamp(msg.header.stamp)] = (
            np.asarray(msg.action, np.float32),
            msg.source == "hold",
        )
        while len(self._executed) > MAX_EXECUTED:
            del self._executed[next(iter(self._executed))]  # the oldest (insertion order)

    def _on_lifecycle(self, msg: EpisodeStatus) -> None:
        if msg.state in ("committed", "discarded"):
            self._to_finish.append((msg, time.monotonic()))
            self._finish_ready()

    def _finish_ready(self) -> None:
        """Finish lifecycle-final episodes in order once all their steps are paired."""
        while self._to_finish:
            msg, since = self._to_finish[0]
            paired = self.sync.paired(int(msg.episode_index))
            # zero paired steps: an episode from before this recorder started (lifecycle
            # history is transient-local) — nothing to wait for
            complete = paired == 0 or paired >= int(msg.step)
            waiting = time.monotonic() - since < self.config.commit_grace_s
            if msg.state == "committed" and not complete and waiting:
                return
            self._to_finish.popleft()
            self._finish(msg)

    def _finish(self, msg: EpisodeStatus) -> None:
        steps = self.sync.pop_episode(int(msg.episode_index))
        if self.config.executed_command_topic:
            steps, changed = with_executed_commands(steps, self._executed)
            self.safety_changed_steps += changed
        if msg.state == "discarded":
            self.discarded += 1
            self.get_logger().info(
                f"episode {msg.episode_index} discarded ({len(steps.steps)} steps)"
            )
            return
        lifecycle = {
            "step": msg.step,
            "success": msg.success,
            "label_source": msg.label_source,
            "reason": msg.reason,
            "seed": msg.seed,
            "task": msg.task,
            "instruction": msg.instruction,
        }
        index = int(msg.episode_index)
        cameras = self.config.camera_names

        def build():
            built = build_episode(
                steps, lifecycle, camera_names=cameras, software_version=__version__
            )
            if built is None:
                self.get_logger().warning(
                    f"episode {index} committed, but this recorder saw none of its steps "
                    "(it started later): not recorded"
                )
            return built

        self.writer.submit_build(build)

    def _on_written(
        self, index: int | None, attrs: dict[str, Any], error: Exception | None
    ) -> None:
        if error is not None:
            self.get_logger().error(
                f"episode {attrs.get('episode_index')} NOT recorded ({error}); the store keeps "
                f"its {self.store.n_episodes} committed episodes"
            )
            return
        self._last_written = {"index": index, "steps": int(attrs.get("length", 0))}

    def _publish_diagnostics(self) -> None:
        w = self.writer
        level = DiagnosticStatus.ERROR if w.failed else DiagnosticStatus.OK
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: episode store",
            message=(f"write failed: {w.last_error}" if w.failed else "ok"),
            hardware_id="recorder",
            values=[
                KeyValue(key="store", value=self.config.store_path),
                KeyValue(key="episodes", value=str(self.store.n_episodes)),
                KeyValue(key="steps", value=str(self.store.n_steps)),
                KeyValue(key="written", value=str(w.written)),
                KeyValue(key="failed", value=str(w.failed)),
                KeyValue(key="discarded", value=str(self.discarded)),
                KeyValue(key="steps changed by safety", value=str(self.safety_changed_steps)),
                KeyValue(key="pending_writes", value=str(w.pending)),
            ],
        )
        out = DiagnosticArray(status=[status])
        out.header.stamp = self.get_clock().now().to_msg()
        self._diag.publish(out)

    def destroy_node(self) -> None:
        self.writer.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
