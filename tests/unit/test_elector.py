"""The election loop against an in-memory Lease store with compare-and-swap, on a fake clock: one holder
per shard, takeover only after a lease duration without renewals, fair shares, departed members removed."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from payguard.coordination import LeaseConflictError
from payguard.elector import DEPARTED_LEASES, Elector
from payguard.fence import Fence
from payguard.settings import Election


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeLeases:
    """Leases as the API server keeps them: a write must carry the resourceVersion it read."""

    namespace = "payguard-system"

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.version = 0

    def list(self, group: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(item) for item in self.items.values()]

    def write(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        current = self.items.get(name)
        read = body["metadata"].get("resourceVersion")
        if (current is None) != (read is None) or (
            current and current["metadata"]["resourceVersion"] != read
        ):
            raise LeaseConflictError(f"Write Lease {name}", 409, "conflict")
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.items[name] = stored
        return copy.deepcopy(stored)

    def delete(self, name: str, *, resource_version: str) -> None:
        if self.items.get(name, {}).get("metadata", {}).get("resourceVersion") == resource_version:
            del self.items[name]

    def holder(self, shard: int) -> str | None:
        item = self.items.get(f"payguard-shard-{shard}")
        return (item["spec"].get("holderIdentity") if item else None) or None


def elector(
    identity: str, store: FakeLeases, clock: Clock, *, shards: int = 1, prefix: str = "payguard"
) -> Elector:
    election = Election(identity=identity, namespace=store.namespace, shards=shards, lease_duration=4,
                        renew_deadline=3, retry_period=0.5, group=prefix)  # fmt: skip
    fence = Fence(shards=shards, renew_deadline=3, clock=clock)

    async def drained(shard: int) -> None:
        return None

    return Elector(
        election, leases=store, fence=fence, changed=lambda s, h: None, drained=drained, clock=clock
    )  # type: ignore[arg-type]


def rounds(clock: Clock, *electors: Elector, seconds: float) -> None:
    async def scenario() -> None:
        end = clock.now + seconds
        while clock.now < end:
            for one in electors:
                await one.round()
            clock.now += 0.5

    asyncio.run(scenario())


def test_one_replica_holds_the_shard_and_the_other_stands_by() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = elector("a", store, clock), elector("b", store, clock)
    rounds(clock, a, b, seconds=10)
    assert store.holder(0) == "a"
    assert a.fence.held() == {0} and b.fence.held() == set()


def test_a_silent_holder_is_replaced_only_after_a_whole_lease_duration() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = elector("a", store, clock), elector("b", store, clock)
    rounds(clock, a, b, seconds=5)
    rounds(clock, b, seconds=3.5)  # a is gone: no renewals
    assert store.holder(0) == "a"
    rounds(clock, b, seconds=1.5)
    assert store.holder(0) == "b" and b.fence.held() == {0}
    assert a.fence.held() == set()  # its renew deadline passed long ago: its fence is shut


def test_shards_are_shared_fairly_and_rebalanced_when_a_replica_joins() -> None:
    store, clock = FakeLeases(), Clock()
    a, b, c = (elector(name, store, clock, shards=8) for name in "abc")
    rounds(clock, a, b, seconds=10)
    assert sorted(len(e.fence.held()) for e in (a, b)) == [4, 4]
    rounds(clock, a, b, c, seconds=10)
    held = [e.fence.held() for e in (a, b, c)]
    assert sorted(map(len, held)) == [2, 3, 3]
    assert set().union(*held) == set(range(8)) and sum(map(len, held)) == 8  # each shard exactly once


def test_the_member_lease_of_a_departed_replica_is_deleted() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = elector("a", store, clock), elector("b", store, clock)
    rounds(clock, a, b, seconds=2)
    assert "payguard-member-b" in store.items
    rounds(clock, a, seconds=DEPARTED_LEASES * 4 + 2)
    assert "payguard-member-b" not in store.items and "payguard-member-a" in store.items


def test_replicas_with_another_shard_count_take_nothing_while_its_leases_live() -> None:
    store, clock = FakeLeases(), Clock()
    old, new = elector("old", store, clock, shards=8), elector("new", store, clock, shards=4)
    rounds(clock, old, seconds=3)
    rounds(clock, old, new, seconds=10)
    assert new.fence.held() == set() and len(old.fence.held()) == 8  # no namespace with two owners
    asyncio.run(old.stop())  # the old replica leaves (a rolling update): its shards are released
    rounds(clock, new, seconds=3)
    assert new.fence.held() == {0, 1, 2, 3}


def test_installations_with_other_lease_prefixes_hold_their_own_leases() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = elector("a", store, clock, prefix="payguard"), elector("b", store, clock, prefix="payguard-canary")
    rounds(clock, a, b, seconds=3)
    assert a.fence.held() == {0} and b.fence.held() == {0}
    assert store.items["payguard-canary-shard-0"]["spec"]["holderIdentity"] == "b"
    assert store.items["payguard-shard-0"]["spec"]["holderIdentity"] == "a"
