"""An rclpy node living in a background thread of a plain Python program (jobs, tests, tools).

It has its own rclpy Context and domain, so several can coexist with other rclpy users in one
process; ``call`` and ``MessageLog.wait_for`` block with timeouts instead of spinning by hand.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any


class MessageLog:
    """Messages received on one subscription, with blocking waits."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._cond = threading.Condition()
        self.subscription: Any = None  # set by RosProbe.subscribe

    def append(self, msg: Any) -> None:
        with self._cond:
            self._items.append(msg)
            self._cond.notify_all()

    @property
    def items(self) -> list[Any]:
        with self._cond:
            return list(self._items)

    def wait_for(
        self,
        predicate: Callable[[Any], bool] = lambda _m: True,
        timeout_s: float = 10.0,
        count: int = 1,
    ) -> list[Any]:
        """Block until ``count`` messages satisfy ``predicate``; return them (TimeoutError)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                hits = [m for m in self._items if predicate(m)]
                if len(hits) >= count:
                    return hits[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"got {len(hits)}/{count} matching messages in {timeout_s:.1f} s "
                        f"({len(self._items)} received in total)"
                    )
                self._cond.wait(left)


class RosProbe:
    """An rclpy node in the test process, in domain ``domain_id``, spun in a background thread."""

    def __init__(self, domain_id: int, name: str = "pld_test_probe") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self._clients: dict[tuple[Any, str], Any] = {}
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        with contextlib.suppress(ExternalShutdownException):  # context shut down in close()
            self._executor.spin()

    def subscribe(self, msg_type: Any, topic: str, qos: Any = 10) -> MessageLog:
        log = MessageLog()
        log.subscription = self.node.create_subscription(msg_type, topic, log.append, qos)
        return log

    def publisher(self, msg_type: Any, topic: str, qos: Any = 10) -> Any:
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher: Any, count: int = 1, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while publisher.get_subscription_count() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no subscriber on {publisher.topic_name} in {timeout_s} s")
            time.sleep(0.02)

    def wait_for_publishers(self, log: MessageLog, count: int = 1, timeout_s: float = 10.0) -> None:
        """Block until ``log``'s subscription is matched: a volatile message sent before is lost."""
        deadline = time.monotonic() + timeout_s
        while log.subscription.get_publisher_count() < count:
            if time.monotonic() > deadline:
                topic = log.subscription.topic_name
                raise TimeoutError(f"no publisher on {topic} in {timeout_s} s")
            time.sleep(0.02)

    def call(self, srv_type: Any, name: str, request: Any, timeout_s: float = 10.0) -> Any:
        """Call a service, waiting for it to appear first; raise TimeoutError on either.

        Clients are kept per service: creating one per call costs a discovery round (seconds).
        """
        key = (srv_type, name)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"service {name} not available after {timeout_s} s")
        future = client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout_s):
            raise TimeoutError(f"service {name} did not answer in {timeout_s} s")
        return future.result()

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)
