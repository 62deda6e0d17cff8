"""episode_manager: runs the episode lifecycle (``core.episode_lifecycle``) over ROS.

Services (all under /episode_manager/): ``start``, ``stop``, ``discard`` (std_srvs/Trigger),
``label`` (LabelEpisode), ``set_mode`` (SetMode: the mode of the next episode). Starting an
episode sets the arbiter's mode (/arbiter/set_mode) and resets the scene/robot
(/episode/reset); the env's /episode/status ends it (sim: success check or time limit,
auto-labelled), or the operator does. Every transition is published on /episode/lifecycle
(EpisodeStatus with manager states, mode and label source; reliable, transient local, depth
50), which the recorder commits or discards on. With ``episodes > 0`` it runs that many
episodes back to back, unattended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from pld_interfaces.msg import EpisodeStatus
from pld_interfaces.srv import LabelEpisode, ResetEpisode, SetMode
from pld_nodes.core.arbiter import MODES
from pld_nodes.core.config import ConfigError
from pld_nodes.core.episode_lifecycle import (
    COMMITTED,
    DISCARDED,
    EpisodeLifecycle,
    EpisodeRecord,
    LifecycleError,
)
from pld_nodes.ros import qos
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config

LIFECYCLE_QOS = QoSProfile(
    depth=50, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


@dataclass(frozen=True)
class EpisodeManagerConfig:
    mode: str = "hybrid"
    auto_label: bool = True
    """Sim: the env's success check labels episodes. Robot: False (the operator labels)."""
    episodes: int = 0
    """> 0: run this many episodes back to back, then idle; 0: start on request only."""
    seed: int = -1
    """Seed of the first episode (episode k: seed + k); -1: the env's own sequence."""
    task: str = ""
    episode_timeout_s: float = 0.0
    """> 0: a running episode longer than this (wall clock) is ended as a timeout — labelled a
    failure with auto_label, else left for the operator. The sim ends episodes itself at
    max_steps; on the robot this is the time limit."""
    reset_timeout_s: float = 60.0
    """A reset without an answer within this time fails the start (lifecycle back to idle)."""
    start_delay_s: float = 1.0
    """Unattended runs: wait this long after startup before the first episode (lets the
    other nodes and any observers discover each other)."""
    wait_for_subscribers: tuple[str, ...] = ()
    """Unattended runs: topics that must have a subscriber before the first episode starts
    (sim graphs: /episode/lifecycle, so a slow-starting recorder misses no episode)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.episodes < 0:
            raise ConfigError("episodes must be >= 0")


class EpisodeManagerNode(Node):
    def __init__(self) -> None:
        super().__init__("episode_manager")
        self.config: EpisodeManagerConfig = declare_config(self, EpisodeManagerConfig)
        self.lifecycle = EpisodeLifecycle(auto_label=self.config.auto_label)
        self._mode = self.config.mode
        self._started = 0
        self._instruction = ""
        self._pub = self.create_publisher(EpisodeStatus, "/episode/lifecycle", LIFECYCLE_QOS)
        self._reset = self.create_client(ResetEpisode, "/episode/reset")
        self._set_mode = self.create_client(SetMode, "/arbiter/set_mode")
        self.create_subscription(EpisodeStatus, "/episode/status", self._on_env, qos.LATCHED)
        ns = "/episode_manager/"
        self.create_service(Trigger, ns + "start", self._srv_start)
        self.create_service(Trigger, ns + "stop", self._srv_stop)
        self.create_service(Trigger, ns + "discard", self._srv_discard)
        self.create_service(LabelEpisode, ns + "label", self._srv_label)
        self.create_service(SetMode, ns + "set_mode", self._srv_set_mode)
        self._auto_timer = None
        self._reset_future = None
        self._reset_started: float | None = None
        self._begun_at: float | None = None  # monotonic time of the last start (mode request)
        self._pending_seed = -1
        self._last_env_index = -1  # newest episode index the env reported
        self._env_index_at_start = -1
        self.create_timer(0.5, self._check_reset_timeout)
        self._t_start = time.monotonic()
        if self.config.episodes > 0:
            self._auto_timer = self.create_timer(0.1, self._auto_start)
        self.get_logger().info(
            f"episode manager: mode {self._mode}, auto_label {self.config.auto_label}, "
            f"episodes {self.config.episodes or 'on request'}"
        )

    # ------------------------------------------------------------------ lifecycle
    def _begin(self) -> EpisodeRecord:
        if not self._reset.service_is_ready():
            raise LifecycleError("the robot/sim reset service /episode/reset is not available")
        seed = -1 if self.config.seed < 0 else self.config.seed + self._started
        record = self.lifecycle.start(self._mode, seed)
        self._started += 1
        self._publish()
        self._reset_started, self._reset_future = None, None
        self._begun_at, self._pending_seed = time.monotonic(), seed
        self._env_index_at_start = self._last_env_index
        mode_req = SetMode.Request(mode=self._mode)
        if self._set_mode.service_is_ready():
            self._set_mode.call_async(mode_req).add_done_callback(
                lambda _f: self._reset_scene(seed)
            )
        else:
            self.get_logger().warning("no arbiter /arbiter/set_mode service; mode not forwarded")
            self._reset_scene(seed)
        return record

    def _reset_scene(self, seed: int) -> None:
        if self.lifecycle.state != "resetting" or self._reset_started is not None:
            return  # already asked (the mode reply came after the fallback below)
        self._reset_future = self._reset.call_async(ResetEpisode.Request(seed=seed))
        self._reset_future.add_done_callback(self._on_reset)
        self._reset_started = time.monotonic()

    def _check_reset_timeout(self) -> None:
        cur = self.lifecycle.current
        limit = self.config.episode_timeout_s
        if cur is not None and cur.state == "running" and limit > 0:
            if time.time() - cur.started_unix_s > limit:
                self.get_logger().warning(f"episode {cur.env_index} timed out after {limit} s")
                if self._set_mode.service_is_ready():  # stop the motion now; the next start
                    self._set_mode.call_async(SetMode.Request(mode="hold"))  # sets the mode
                self.lifecycle.env_ended(False, "timeout", cur.steps)
                self._publish()
            return
        if self.lifecycle.state != "resetting":
            return
        if self._reset_started is None:
            # No answer from the arbiter's set_mode (busy, restarting, or the reply was lost):
            # reset anyway after a while rather than leave the episode in "resetting".
            if self._begun_at is not None and time.monotonic() - self._begun_at > 5.0:
                self.get_logger().warning("no reply from /arbiter/set_mode in 5 s; resetting")
                self._reset_scene(self._pending_seed)
            return
        if time.monotonic() - self._reset_started > self.config.reset_timeout_s:
            self._reset_started = None
            if self._reset_future is not None:
                self._reset_future.cancel()
            self.lifecycle.reset_done(False, message="reset timed out")
            self.get_logger().error("reset timed out: episode not started")
            self._publish()

    def _on_reset(self, future) -> None:
        if future.cancelled() or self.lifecycle.state != "resetting":
            return
        try:
            reply = future.result()
        except Exception as exc:  # the service vanished mid-call
            self.lifecycle.reset_done(False, message=repr(exc))
            self._publish()
            return
        if reply.success:
            self._instruction = reply.instruction
        self.lifecycle.reset_done(
            reply.success, int(reply.seed), reply.message, int(reply.episode_index)
        )
        self._publish()

    def _on_env(self, msg: EpisodeStatus) -> None:
        index = int(msg.episode_index)
        if (
            self.lifecycle.state == "resetting"
            and self._reset_started is not None
            and msg.state == "running"
            and index > self._env_index_at_start
        ):
            # The env runs the episode our reset started: its status usually arrives before the
            # reset's reply, and it is the answer should the reply be lost.
            self.get_logger().debug(f"env runs episode {index}: reset done")
            if self._reset_future is not None:
                self._reset_future.cancel()
            self._instruction = msg.instruction or self._instruction
            self.lifecycle.reset_done(True, int(msg.seed), "", index)
            self._publish()
        self._last_env_index = max(self._last_env_index, index)
        cur = self.lifecycle.current
        if cur is None or cur.state != "running" or int(msg.episode_index) != cur.env_index:
            return
        if msg.state == "running":
            self.lifecycle.step(int(msg.step))
        elif msg.state == "ended":
            self.lifecycle.env_ended(bool(msg.success), msg.reason, int(msg.step))
            self._publish()

    def _auto_start(self) -> None:
        if time.monotonic() - self._t_start < self.config.start_delay_s:
            return
        if self._started == 0 and any(
            self.count_subscribers(topic) == 0 for topic in self.config.wait_for_subscribers
        ):
            return
        if self._started >= self.config.episodes:
            if self._auto_timer is not None:
                self._auto_timer.cancel()
            return
        if (
            self.lifecycle.state in ("idle", COMMITTED, DISCARDED)
            and self._reset.service_is_ready()
        ):
            self._begin()

    def _publish(self) -> None:
        rec = self.lifecycle.current
        if rec is None:
            return
        msg = EpisodeStatus(
            episode_index=max(rec.env_index, 0),
            state=rec.state,
            reason=rec.reason,
            step=rec.steps,
            seed=rec.seed,
            success=rec.success,
            task=self.config.task,
            instruction=self._instruction,
            mode=rec.mode,
            label_source=rec.label_source,
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self._pub.publish(msg)
        if rec.state in (COMMITTED, DISCARDED):
            self.get_logger().info(
                f"episode {rec.env_index} {rec.state}: success={rec.success} "
                f"({rec.label_source or rec.reason}), {rec.steps} steps"
            )

    # ------------------------------------------------------------------ services
    def _guard(self, response, action):
        try:
            action()
            response.success, response.message = True, self.lifecycle.state
        except LifecycleError as exc:
            response.success, response.message = False, str(exc)
        return response

    def _srv_start(self, _req, response):
        return self._guard(response, self._begin)

    def _srv_stop(self, _req, response):
        return self._guard(response, lambda: (self.lifecycle.stop(), self._publish()))

    def _srv_discard(self, _req, response):
        return self._guard(response, lambda: (self.lifecycle.discard(), self._publish()))

    def _srv_label(self, request: LabelEpisode.Request, response: LabelEpisode.Response):
        try:
            self.lifecycle.label(request.success, request.source or "operator")
            self._publish()
            response.accepted, response.message = True, "committed"
        except LifecycleError as exc:
            response.accepted, response.message = False, str(exc)
        return response

    def _srv_set_mode(self, request: SetMode.Request, response: SetMode.Response):
        if request.mode not in MODES:
            response.success, response.message = False, f"unknown mode; valid: {MODES}"
        else:
            self._mode = request.mode
            response.success, response.message = True, f"next episode: {request.mode}"
        return response


def main(args: list[str] | None = None) -> int:
    return run_node(EpisodeManagerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
