import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pld_nodes.core.health import (
    HealthLevel,
    HealthMonitorConfig,
    StreamExpectation,
    StreamHealth,
)


def feed(health: StreamHealth, rate_hz: float, start: float, stop: float) -> None:
    t = start
    while t < stop:
        health.record(t)
        t += 1.0 / rate_hz


def test_never_received_is_stale() -> None:
    rep = StreamHealth(StreamExpectation("/cam", 10.0, 0.5)).report(now=100.0)
    assert rep.level is HealthLevel.STALE
    assert rep.count == 0 and math.isinf(rep.age_s)


def test_steady_stream_is_ok_with_correct_rate() -> None:
    health = StreamHealth(StreamExpectation("/cam", 25.0, 0.5), window_s=2.0)
    feed(health, 30.0, 0.0, 5.0)
    rep = health.report(now=5.0)
    assert rep.level is HealthLevel.OK
    assert rep.rate_hz == pytest.approx(30.0, rel=0.02)


def test_slow_stream_warns() -> None:
    health = StreamHealth(StreamExpectation("/cam", 25.0, 0.5))
    feed(health, 10.0, 0.0, 5.0)
    rep = health.report(now=5.0)
    assert rep.level is HealthLevel.WARN
    assert rep.rate_hz == pytest.approx(10.0, abs=0.6)
    assert rep.message.startswith("slow: ") and "Hz < 25.0 Hz" in rep.message


def test_silence_turns_stale_even_after_rate_queries() -> None:
    health = StreamHealth(StreamExpectation("/cam", 0.0, 0.5), window_s=1.0)
    feed(health, 50.0, 0.0, 2.0)
    assert health.report(now=2.0).level is HealthLevel.OK
    health.rate_hz(now=10.0)  # forgets every arrival in the window
    rep = health.report(now=10.0)
    assert rep.level is HealthLevel.STALE
    assert rep.age_s == pytest.approx(8.02, abs=0.05)


@given(
    rate=st.floats(min_value=1.0, max_value=500.0),
    duration=st.floats(min_value=3.0, max_value=10.0),
)
def test_rate_estimate_tracks_true_rate(rate: float, duration: float) -> None:
    health = StreamHealth(StreamExpectation("/x"), window_s=2.0)
    feed(health, rate, 0.0, duration)
    estimate = health.rate_hz(now=duration)
    assert estimate == pytest.approx(rate, rel=0.05, abs=0.6)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"topics": ()}, "at least one topic"),
        ({"topics": ("/a", "/b"), "types": ("std_msgs/msg/String",)}, "types has 1 entries"),
        ({"min_rates_hz": (1.0, 2.0)}, "min_rates_hz has 2 entries"),
        ({"min_rates_hz": (-1.0,)}, "min_rate_hz must be finite and >= 0"),
        ({"stale_after_s": 0.0}, "stale_after_s must be finite and > 0"),
        ({"publish_period_s": float("nan")}, "publish_period_s must be > 0"),
    ],
)
def test_monitor_config_rejects_inconsistent_values(kwargs: dict, fragment: str) -> None:
    base = {"topics": ("/a",), "types": ("std_msgs/msg/String",)}
    with pytest.raises(ValueError, match=fragment):
        HealthMonitorConfig(**(base | kwargs))


def test_a_burst_after_a_stall_does_not_read_as_a_high_rate() -> None:
    health = StreamHealth(StreamExpectation("/x", 5.0, 5.0), window_s=2.0)
    feed(health, 10.0, 0.0, 3.0)
    for k in range(10):  # stalled 3 s, then ten queued messages at once
        health.record(6.0 + k * 1e-4)
    rep = health.report(now=6.001)
    assert rep.rate_hz == pytest.approx(5.0)  # 10 arrivals in the 2 s window
    assert rep.level is HealthLevel.OK
