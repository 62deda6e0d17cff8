"""The panel's ROS side: subscriptions turned into model events, asynchronous service calls.

Callbacks run on the executor's thread and only convert messages and put events on a
thread-safe queue; the widget drains that queue on a Qt timer, so the GUI thread never blocks
on ROS. Service calls return at once; their answers (or "not available" / "timed out") come
back as ``ServiceResult`` events.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from pld_interfaces.msg import ArbiterStep, EpisodeStatus
from pld_interfaces.srv import LabelEpisode, ResetEpisode, SetMode
from pld_nodes.episode_manager_node import LIFECYCLE_QOS
from pld_nodes.ros import qos

from . import model

EM = "/episode_manager/"
READY_WAIT_S = 5.0  # how long a call waits for its service to be discovered
SERVICES = (
    (Trigger, EM + "start"),
    (Trigger, EM + "stop"),
    (Trigger, EM + "discard"),
    (LabelEpisode, EM + "label"),
    (SetMode, EM + "set_mode"),
    (SetMode, "/arbiter/set_mode"),
    (ResetEpisode, "/episode/reset"),
    (Trigger, "/safety/estop"),
    (Trigger, "/safety/reset"),
)
CAMERA_PREFIX, CAMERA_SUFFIX = "/cameras/", "/image_raw"
THUMB_PX = 160
THUMB_PERIOD_S = 0.2


def thumbnail(msg: Image, max_px: int = THUMB_PX) -> model.CameraFrame | None:
    """Downscale an rgb8/bgr8 image by striding (cheap, done on the ROS thread)."""
    if msg.encoding not in ("rgb8", "bgr8") or msg.width == 0 or msg.height == 0:
        return None
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    img = rows[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
    if msg.encoding == "bgr8":
        img = img[:, :, ::-1]
    k = max(1, math.ceil(max(msg.width, msg.height) / max_px))
    small = np.ascontiguousarray(img[::k, ::k])
    name = msg.header.frame_id or "camera"
    return model.CameraFrame(name, small.shape[1], small.shape[0], small.tobytes())


def diag_statuses(msg: DiagnosticArray) -> list[model.DiagStatus]:
    out = []
    for s in msg.status:
        level = s.level[0] if isinstance(s.level, bytes | bytearray) else int(s.level)
        values = {kv.key: kv.value for kv in s.values}
        out.append(model.DiagStatus(s.name, s.hardware_id, int(level), s.message, values))
    return out


def _reply(response: Any) -> tuple[bool, str]:
    ok = response.accepted if hasattr(response, "accepted") else response.success
    return bool(ok), str(response.message)


class PanelBridge:
    """Subscriptions, publishers and service clients of the panel on one rclpy node."""

    def __init__(self, node: Node, events: queue.SimpleQueue, timeout_s: float = 10.0) -> None:
        self.node = node
        self.events = events
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Any, float]] = []
        self._clients: dict[str, Any] = {}
        self._cameras: dict[str, Any] = {}
        self._thumb_due: dict[str, float] = {}
        put = events.put
        sub = node.create_subscription
        sub(EpisodeStatus, "/episode/lifecycle", self._on_lifecycle, LIFECYCLE_QOS)
        sub(EpisodeStatus, "/episode/status", self._on_env, qos.LATCHED)
        sub(ArbiterStep, "/arbiter/step", self._on_step, qos.STATE)
        sub(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        sub(Bool, "/safety/estopped", lambda m: put(model.Estopped(bool(m.data))), qos.LATCHED)
        sub(String, "/task/instruction", lambda m: put(model.Instruction(m.data)), qos.LATCHED)
        sub(String, "/robot/mode", lambda m: put(model.RobotMode(m.data)), qos.LATCHED)
        self._estop_pub = node.create_publisher(String, "/safety/estop", 10)
        self._instruction_pub = node.create_publisher(String, "/task/instruction", qos.LATCHED)
        self._waiting: list[tuple[str, Any, str, Any, Callable[[], None] | None, float]] = []
        # Clients are created now, not at the first click: a client created just before its
        # call is often not matched with the server yet (measured: the first Start of a fresh
        # panel was refused as "not available" in about 1 of 4 runs).
        for srv_type, name in SERVICES:
            self._client(srv_type, name)
        node.create_timer(1.0, self._poll_graph)
        node.create_timer(0.1, self._expire_calls)

    # ------------------------------------------------------------------ subscriptions
    def _on_lifecycle(self, m: EpisodeStatus) -> None:
        self.events.put(
            model.Lifecycle(
                episode_index=int(m.episode_index),
                state=m.state,
                reason=m.reason,
                step=int(m.step),
                mode=m.mode,
                success=bool(m.success),
                label_source=m.label_source,
                instruction=m.instruction,
            )
        )

    def _on_env(self, m: EpisodeStatus) -> None:
        self.events.put(model.EnvStatus(int(m.episode_index), m.state, int(m.step)))

    def _on_step(self, m: ArbiterStep) -> None:
        self.events.put(
            model.StepRecord(
                episode_index=int(m.episode_index),
                step=int(m.step),
                mode=m.mode,
                t_base=int(m.t_base),
                phase=int(m.phase),
                hold_reason=m.hold_reason,
                residual_version=int(m.residual_version),
            )
        )

    def _on_diag(self, m: DiagnosticArray) -> None:
        for status in diag_statuses(m):
            self.events.put(status)

    def _on_image(self, camera: str, m: Image) -> None:
        now = time.monotonic()
        if now < self._thumb_due.get(camera, 0.0):
            return  # the panel needs a few frames per second, not the control rate
        self._thumb_due[camera] = now + THUMB_PERIOD_S
        frame = thumbnail(m)
        if frame is not None:
            self.events.put(model.CameraFrame(camera, frame.width, frame.height, frame.rgb))

    def _poll_graph(self) -> None:
        names = frozenset(n for n, _ns in self.node.get_node_names_and_namespaces())
        self.events.put(model.GraphNodes(names))
        for topic, _types in self.node.get_topic_names_and_types():
            if topic.startswith(CAMERA_PREFIX) and topic.endswith(CAMERA_SUFFIX):
                camera = topic[len(CAMERA_PREFIX) : -len(CAMERA_SUFFIX)]
                if camera not in self._cameras:
                    self._cameras[camera] = self.node.create_subscription(
                        Image, topic, lambda m, c=camera: self._on_image(c, m), qos.SENSOR
                    )

    # ------------------------------------------------------------------ services
    def _client(self, srv_type: Any, name: str) -> Any:
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = self.node.create_client(srv_type, name)
            return client

    def service_ready(self, name: str) -> bool:
        """Whether ``name`` (one of ``SERVICES``) is discovered: a call would go out at once."""
        client = self._clients.get(name)
        return client is not None and client.service_is_ready()

    def call(
        self,
        action: str,
        srv_type: Any,
        name: str,
        request: Any,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Call ``name`` without waiting; the outcome arrives as a ``ServiceResult`` event."""
        client = self._client(srv_type, name)
        if not client.service_is_ready():  # give discovery a moment before saying no
            with self._lock:
                deadline = time.monotonic() + READY_WAIT_S
                self._waiting.append((action, srv_type, name, request, then, deadline))
            return
        self._send(action, client, request, then)

    def _send(
        self, action: str, client: Any, request: Any, then: Callable[[], None] | None
    ) -> None:
        future = client.call_async(request)
        with self._lock:
            self._pending.append((action, future, time.monotonic() + self.timeout_s))

        def done(f: Any) -> None:
            if f.cancelled():
                return
            try:
                ok, message = _reply(f.result())
            except Exception as exc:  # the server vanished mid-call
                ok, message = False, repr(exc)
            self.events.put(model.ServiceResult(action, ok, message))
            if ok and then is not None:
                then()

        future.add_done_callback(done)

    def _expire_calls(self) -> None:
        now = time.monotonic()
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for action, srv_type, name, request, then, deadline in waiting:
            client = self._client(srv_type, name)
            if client.service_is_ready():
                self._send(action, client, request, then)
            elif now > deadline:
                self.events.put(model.ServiceResult(action, False, f"{name} is not available"))
            else:
                with self._lock:
                    self._waiting.append((action, srv_type, name, request, then, deadline))
        with self._lock:
            overdue = [p for p in self._pending if p[1].done() or p[2] < now]
            self._pending = [p for p in self._pending if p not in overdue]
        for action, future, _deadline in overdue:
            if not future.done():
                future.cancel()
                msg = f"no answer within {self.timeout_s:.0f} s"
                self.events.put(model.ServiceResult(action, False, msg))

    # ------------------------------------------------------------------ operator actions
    def start(self) -> None:
        self.call("start", Trigger, EM + "start", Trigger.Request())

    def stop(self) -> None:
        self.call("stop", Trigger, EM + "stop", Trigger.Request())

    def discard(self) -> None:
        self.call("discard", Trigger, EM + "discard", Trigger.Request())

    def label(self, success: bool) -> None:
        action = "label success" if success else "label failure"
        request = LabelEpisode.Request(success=success, source="operator")
        self.call(action, LabelEpisode, EM + "label", request)

    def set_mode(self, mode: str) -> None:
        self.call(f"set mode {mode}", SetMode, EM + "set_mode", SetMode.Request(mode=mode))

    def pause(self) -> None:
        """Hold the arm at once (the arbiter's ``hold``); the next start sets the mode again."""
        self.call("pause (hold)", SetMode, "/arbiter/set_mode", SetMode.Request(mode="hold"))

    def reset_scene(self) -> None:
        """Hold first, so the env episode a reset starts is never driven by a policy."""

        def reset() -> None:
            self.call("reset scene", ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=-1))

        self.call("hold before reset", SetMode, "/arbiter/set_mode",
                  SetMode.Request(mode="hold"), then=reset)  # fmt: skip

    def estop(self) -> None:
        """Topic and service both: the topic needs no discovered client to latch the e-stop."""
        self._estop_pub.publish(String(data="operator panel e-stop"))
        self.call("e-stop", Trigger, "/safety/estop", Trigger.Request())

    def estop_reset(self) -> None:
        self.call("e-stop reset", Trigger, "/safety/reset", Trigger.Request())

    def publish_instruction(self, text: str) -> None:
        self._instruction_pub.publish(String(data=text))
        self.events.put(model.ServiceResult("instruction", True, f"published: {text!r}"))


class OwnedNode:
    """An rclpy node with its own Context, spun by a single-threaded executor on a thread.

    (rclpy's MultiThreadedExecutor lost messages in this stack; one thread is enough here.)
    """

    def __init__(self, name: str = "operator_panel", domain_id: int | None = None) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        kwargs: dict[str, Any] = {"context": self.context}
        if domain_id is not None:
            kwargs["domain_id"] = domain_id
        rclpy.init(**kwargs)
        self.node = rclpy.create_node(name, context=self.context)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="panel-ros", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        with contextlib.suppress(ExternalShutdownException):
            self._executor.spin()

    def close(self) -> None:
        """Stop and join the executor thread before the node and context go: a thread still
        inside rcl at interpreter exit aborts the process ("terminate called ...")."""
        self._executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        self.context.try_shutdown()
