"""The HA tests' witness can fail: a write by a replica that did not hold its shard's Lease is found."""

from __future__ import annotations

from ha_world import LEASE_SECONDS, Write, holder_at, writes_outside_terms


def lease(at: float, writer: str, holder: str | None) -> Write:
    return Write(at, at, writer, "update", "leases", "payguard-system", "payguard-shard-0", 200, holder)


def child(at: float, writer: str) -> Write:
    return Write(at, at, writer, "patch", "networkpolicies", "payments", "checkout", 200)


def outside(writes: list[Write]) -> list[str]:
    return writes_outside_terms(sorted(writes, key=lambda w: w.done), lease_of=lambda _ns: "payguard-shard-0")


def test_writes_of_the_holder_within_its_term_pass() -> None:
    assert outside([lease(0, "a", "a"), child(1, "a"), lease(2, "a", "a"), child(3, "a")]) == []


def test_a_write_after_another_replica_took_the_lease_is_found() -> None:
    found = outside([lease(0, "a", "a"), lease(LEASE_SECONDS + 1, "b", "b"), child(LEASE_SECONDS + 2, "a")])
    assert len(found) == 1 and "while payguard-shard-0 was held by b" in found[0]


def test_a_write_after_the_term_ran_out_or_the_lease_was_released_is_found() -> None:
    assert holder_at([lease(0, "a", "a")], "payguard-shard-0", LEASE_SECONDS) is None
    assert len(outside([lease(0, "a", "a"), child(LEASE_SECONDS + 0.1, "a")])) == 1
    assert len(outside([lease(0, "a", "a"), lease(1, "a", None), child(1.5, "a")])) == 1
