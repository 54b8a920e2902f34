"""The client-side rate limit: bursts pass at once, then requests are spaced at the configured rate."""

from __future__ import annotations

from typing import Any

import pytest

from payguard import handlers
from payguard.cli import main
from payguard.ratelimit import NoLimit, RateLimiter, client_limit
from payguard.settings import RunSettings


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


def test_by_default_there_is_no_client_side_limit() -> None:
    """Flow control is left to the API server's priority and fairness: a thousand requests never wait."""
    time = FakeTime()
    defaults = RunSettings()
    limiter = client_limit(qps=defaults.qps, burst=defaults.burst, clock=time.clock, sleep=time.sleep)
    assert isinstance(limiter, NoLimit)
    assert sum(limiter.acquire() for _ in range(1000)) == 0.0
    assert time.slept == []


def test_qps_alone_limits_with_a_burst_of_twice_the_rate() -> None:
    time = FakeTime()
    limiter = client_limit(qps=5, burst=0, clock=time.clock, sleep=time.sleep)
    waits = [limiter.acquire() for _ in range(11)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] == pytest.approx(0.2)


def test_qps_and_burst_limit_as_given() -> None:
    time = FakeTime()
    limiter = client_limit(qps=20, burst=2, clock=time.clock, sleep=time.sleep)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.05)]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--burst", "5"], "--burst needs --qps"),
        (["--qps", "-1"], "--qps"),
        (["--qps", "5", "--burst", "-2"], "--burst"),
    ],
)
def test_run_refuses_limits_that_make_no_sense_naming_the_flag(
    flags: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", *flags])
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def test_the_operator_limits_its_client_as_the_flags_say(tmp_path: Any) -> None:
    """The wiring: the Cluster the operator talks through carries the limit the settings ask for."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    for settings, expected in (
        (RunSettings(kubeconfig=str(kubeconfig)), NoLimit),
        (RunSettings(kubeconfig=str(kubeconfig), qps=5, burst=1), RateLimiter),
    ):
        controller = handlers._controller(handlers.kopf.Memo(settings=settings))
        assert type(controller.cluster._limiter) is expected


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""
