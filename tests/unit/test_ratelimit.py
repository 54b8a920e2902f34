"""The client-side rate limit: bursts pass at once, then requests are spaced at the configured rate."""

from __future__ import annotations

import pytest

from payguard.ratelimit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_burst_passes_without_waiting_then_requests_are_spaced() -> None:
    time = FakeTime()
    limiter = RateLimiter(qps=10, burst=3, clock=time.clock, sleep=time.sleep)

    waits = [limiter.acquire() for _ in range(5)]

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.1)
    assert waits[4] == pytest.approx(0.1)


def test_idle_time_refills_the_bucket_up_to_the_burst() -> None:
    time = FakeTime()
    limiter = RateLimiter(qps=10, burst=2, clock=time.clock, sleep=time.sleep)
    limiter.acquire()
    limiter.acquire()

    time.now += 60  # a long pause refills to the burst, not beyond

    assert [limiter.acquire() for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire() == pytest.approx(0.1)


@pytest.mark.parametrize(("qps", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_limits_are_refused(qps: float, burst: int) -> None:
    with pytest.raises(ValueError, match="qps must be positive"):
        RateLimiter(qps=qps, burst=burst)
