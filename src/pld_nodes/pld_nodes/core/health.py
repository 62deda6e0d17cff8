"""Liveness and rate of message streams, judged from arrival times on a monotonic clock.

The operator panel and the safety monitor need the same answer to "is this node alive and
keeping its rate?"; this module gives it without ROS so that it can be tested on plain numbers.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass


class HealthLevel(enum.IntEnum):
    """Same numbering as diagnostic_msgs/DiagnosticStatus (OK, WARN, ERROR, STALE)."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class StreamExpectation:
    """What a healthy stream looks like."""

    name: str
    """Topic (or any stream id) being watched."""
    min_rate_hz: float = 0.0
    """Rate below which the stream is reported WARN; 0 disables the rate check."""
    stale_after_s: float = 1.0
    """No message for this long (or never) makes the stream STALE."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("StreamExpectation.name must be a non-empty string")
        if not math.isfinite(self.min_rate_hz) or self.min_rate_hz < 0.0:
            raise ValueError(f"min_rate_hz must be finite and >= 0, got {self.min_rate_hz!r}")
        if not math.isfinite(self.stale_after_s) or self.stale_after_s <= 0.0:
            raise ValueError(f"stale_after_s must be finite and > 0, got {self.stale_after_s!r}")


@dataclass(frozen=True)
class StreamReport:
    name: str
    level: HealthLevel
    rate_hz: float
    age_s: float
    """Seconds since the last message; ``inf`` if none arrived yet."""
    count: int
    message: str


class StreamHealth:
    """Tracks one stream: call :meth:`record` on every arrival, :meth:`report` when asked."""

    def __init__(self, expectation: StreamExpectation, window_s: float = 2.0) -> None:
        if not math.isfinite(window_s) or window_s <= 0.0:
            raise ValueError(f"window_s must be finite and > 0, got {window_s!r}")
        self.expectation = expectation
        self._window_s = window_s
        self._arrivals: deque[float] = deque()
        self._last = -math.inf
        self._first: float | None = None
        self._count = 0

    def record(self, t: float) -> None:
        """Register an arrival at monotonic time ``t`` (seconds)."""
        self._arrivals.append(t)
        self._last = max(self._last, t)
        if self._first is None:
            self._first = t
        self._count += 1
        self._forget_before(t - self._window_s)

    def _forget_before(self, t: float) -> None:
        while self._arrivals and self._arrivals[0] <= t:
            self._arrivals.popleft()

    def rate_hz(self, now: float) -> float:
        """Arrivals per second over the last window.

        Counting arrivals over the whole window (not dividing by the span of the arrivals) keeps
        a burst — a node catching up after a stall — from reading as a very high rate.
        """
        self._forget_before(now - self._window_s)
        if self._first is None or not self._arrivals:
            return 0.0
        observed = now - self._first
        if observed >= self._window_s:
            return len(self._arrivals) / self._window_s
        return (len(self._arrivals) - 1) / observed if observed > 0.0 else 0.0

    def report(self, now: float) -> StreamReport:
        exp = self.expectation
        if self._count == 0:
            return StreamReport(exp.name, HealthLevel.STALE, 0.0, math.inf, 0, "no message yet")
        age = now - self._last
        if age > exp.stale_after_s:
            msg = f"stale: no message for {age:.2f} s (limit {exp.stale_after_s:.2f} s)"
            return StreamReport(exp.name, HealthLevel.STALE, 0.0, age, self._count, msg)
        rate = self.rate_hz(now)
        if exp.min_rate_hz > 0.0 and rate < exp.min_rate_hz:
            msg = f"slow: {rate:.1f} Hz < {exp.min_rate_hz:.1f} Hz"
            return StreamReport(exp.name, HealthLevel.WARN, rate, age, self._count, msg)
        return StreamReport(exp.name, HealthLevel.OK, rate, age, self._count, f"{rate:.1f} Hz")


@dataclass(frozen=True)
class HealthMonitorConfig:
    """Which streams a health monitor watches (parallel arrays, so they map onto ROS params)."""

    topics: tuple[str, ...]
    """Topic names to watch."""
    types: tuple[str, ...]
    """Message type of each topic, e.g. ``sensor_msgs/msg/JointState``."""
    min_rates_hz: tuple[float, ...] = ()
    """Minimum healthy rate per topic; empty means no rate requirement for any."""
    stale_after_s: float = 1.0
    """A topic silent for longer than this is STALE."""
    publish_period_s: float = 1.0
    """How often the diagnostics are published."""
    window_s: float = 2.0
    """Averaging window of the rate estimate."""

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError("topics must name at least one topic to watch")
        if len(self.types) != len(self.topics):
            raise ValueError(
                f"types has {len(self.types)} entries but topics has {len(self.topics)}: "
                f"topics={list(self.topics)} types={list(self.types)}"
            )
        if self.min_rates_hz and len(self.min_rates_hz) != len(self.topics):
            raise ValueError(
                f"min_rates_hz has {len(self.min_rates_hz)} entries, expected 0 or "
                f"{len(self.topics)} (one per topic)"
            )
        if not math.isfinite(self.publish_period_s) or self.publish_period_s <= 0.0:
            raise ValueError(f"publish_period_s must be > 0, got {self.publish_period_s!r}")
        for exp in self.expectations():  # validates each rate and the staleness limit
            del exp

    def expectations(self) -> list[StreamExpectation]:
        rates = self.min_rates_hz or (0.0,) * len(self.topics)
        return [
            StreamExpectation(topic, rate, self.stale_after_s)
            for topic, rate in zip(self.topics, rates, strict=True)
        ]
