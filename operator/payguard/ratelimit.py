"""Owns the optional client-side limit on payguard's API requests: a token bucket shared by all workers.

Off by default: current controller frameworks leave flow control to the API server's priority and
fairness, and a client-side limit of 50 requests/s capped a 500-service burst at about 190 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """At most `qps` requests per second on average, with bursts of up to `burst` (as client-go's QPS/Burst).

    A thundering herd of passes (an operator restart, a mesh-wide policy change waking every service)
    then queues here instead of flooding the API server.
    """

    def __init__(
        self,
        *,
        qps: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be positive and burst at least 1")
        self._qps = qps
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Takes one token, waiting for it if needed; returns how long it waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
            self._last = now
            self._tokens -= 1
            wait = -self._tokens / self._qps if self._tokens < 0 else 0.0
        if wait:
            self._sleep(wait)
        return wait


class NoLimit:
    """No client-side limit (the default): the API server's priority and fairness governs."""

    def acquire(self) -> float:
        return 0.0


Limiter = RateLimiter | NoLimit


def client_limit(
    *,
    qps: float,
    burst: int,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Limiter:
    """The limit `--qps` and `--burst` ask for: `qps` 0 is none, `burst` 0 is twice `qps`."""
    if qps < 0:
        raise ValueError(f"--qps must be 0 (no client-side limit) or positive, got {qps:g}")
    if burst < 0:
        raise ValueError(f"--burst must be 0 (twice --qps) or positive, got {burst}")
    if qps == 0:
        if burst:
            raise ValueError(
                "--burst needs --qps: without a client-side rate there is nothing to burst above"
            )
        return NoLimit()
    return RateLimiter(qps=qps, burst=burst or max(1, round(2 * qps)), clock=clock, sleep=sleep)
