"""Lease decisions, pure: expiry as this replica observed it (client-go), and the bodies it writes."""

from __future__ import annotations

from datetime import UTC, datetime

from payguard.leases import LeaseRecord, departed, lease_body, live_holder, observe

NOW = datetime(2026, 12, 2, 7, 0, 0, 123456, tzinfo=UTC)


def record(holder: str | None, renew: str = "t1", *, rv: str = "7", duration: int = 15) -> LeaseRecord:
    body = {
        "metadata": {"name": "payguard-shard-0", "resourceVersion": rv},
        "spec": {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": duration},
    }
    return LeaseRecord.from_body(body)


def test_a_holder_is_live_until_a_whole_duration_passes_without_a_renewal_seen() -> None:
    seen = observe(None, record("a"), now=100.0)
    assert live_holder(seen, now=114.9) == "a"
    assert live_holder(seen, now=115.0) is None


def test_a_renewal_restarts_the_wait_but_a_relist_of_the_same_record_does_not() -> None:
    seen = observe(None, record("a", "t1"), now=100.0)
    same = observe(seen, record("a", "t1", rv="7"), now=110.0)
    assert same.changed_at == 100.0  # listing it again is not a renewal
    renewed = observe(same, record("a", "t2", rv="8"), now=110.0)
    assert live_holder(renewed, now=120.0) == "a"


def test_the_wall_clock_in_renew_time_is_never_compared_with_ours() -> None:
    # A renewTime far in the past (a skewed node) does not make a holder just seen renewing look expired.
    seen = observe(None, record("a", "1999-01-01T00:00:00.000000Z"), now=100.0)
    assert live_holder(seen, now=101.0) == "a"


def test_a_released_or_missing_lease_has_no_live_holder() -> None:
    assert live_holder(None, now=0.0) is None
    assert live_holder(observe(None, record(None), now=0.0), now=0.0) is None


def test_acquiring_from_another_holder_counts_a_transition_and_carries_the_read_version() -> None:
    body = lease_body(
        name="payguard-shard-0",
        namespace="payguard-system",
        group="payguard",
        role="shard",
        holder="b",
        previous=record("a", rv="41"),
        now=NOW,
        duration=15,
    )
    assert body["metadata"]["resourceVersion"] == "41"  # compare-and-swap: a racing writer gets 409
    assert body["spec"]["holderIdentity"] == "b"
    assert body["spec"]["acquireTime"] == body["spec"]["renewTime"] == "2026-12-02T07:00:00.123456Z"
    assert body["spec"]["leaseTransitions"] == 1
    assert body["spec"]["leaseDurationSeconds"] == 15
    assert body["metadata"]["labels"] == {
        "payguard.dev/lease-group": "payguard",
        "payguard.dev/lease-role": "shard",
    }


def test_a_renewal_keeps_the_acquire_time_and_a_release_clears_the_holder() -> None:
    held = LeaseRecord.from_body(
        {
            "metadata": {"name": "payguard-shard-0", "resourceVersion": "9"},
            "spec": {"holderIdentity": "a", "renewTime": "t1", "acquireTime": "t0", "leaseTransitions": 3},
        }
    )
    common = {"name": "n", "namespace": "ns", "group": "payguard", "role": "shard", "now": NOW}
    renewed = lease_body(holder="a", previous=held, duration=15, **common)  # type: ignore[arg-type]
    assert renewed["spec"]["acquireTime"] == "t0" and renewed["spec"]["leaseTransitions"] == 3
    released = lease_body(holder=None, previous=held, duration=15, **common)  # type: ignore[arg-type]
    assert "holderIdentity" not in released["spec"] and released["spec"]["leaseDurationSeconds"] == 1


def test_a_first_acquire_creates_the_lease_without_a_resource_version() -> None:
    body = lease_body(
        name="n", namespace="ns", group="g", role="member", holder="a", previous=None, now=NOW, duration=4
    )
    assert "resourceVersion" not in body["metadata"] and body["spec"]["leaseTransitions"] == 0


def test_a_member_lease_is_departed_only_long_after_its_last_renewal_was_seen() -> None:
    seen = observe(None, record("payguard-7d9f-x2v", duration=15), now=100.0)
    assert not departed(seen, now=399.0, after=300.0)
    assert departed(seen, now=400.0, after=300.0)
    released = observe(None, record(None), now=100.0)
    assert not departed(released, now=200.0, after=300.0) and departed(released, now=400.0, after=300.0)
