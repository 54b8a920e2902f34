"""Shards and their fair share, pure: a stable hash of the namespace, and one round of a replica's plan."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from payguard.sharding import fair_share, plan_shards, shard_of


def test_the_shard_of_a_namespace_is_the_same_in_every_process() -> None:
    # The built-in hash() is salted per process; two replicas must agree on every namespace.
    code = "from payguard.sharding import shard_of; print(shard_of('payments', shards=8))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == shard_of("payments", shards=8)


def test_namespaces_spread_over_every_shard() -> None:
    counts = Counter(shard_of(f"team-{i}", shards=8) for i in range(800))
    assert set(counts) == set(range(8))
    assert min(counts.values()) > 60  # about 100 each


@pytest.mark.parametrize(
    ("shards", "members", "share"), [(8, 3, 3), (8, 2, 4), (1, 2, 1), (8, 1, 8), (8, 0, 8)]
)
def test_the_fair_share_is_the_ceiling(shards: int, members: int, share: int) -> None:
    assert fair_share(shards=shards, members=members) == share


def test_one_replica_takes_every_shard() -> None:
    plan = plan_shards(identity="a", shards=8, members=1, holders={}, held=set())
    assert plan.acquire == tuple(range(8)) and plan.release == ()


def test_a_replica_takes_only_free_shards_up_to_its_share() -> None:
    holders = {0: "b", 1: "b", 2: "b", 3: "c", 4: "c", 5: None, 6: None, 7: None}
    plan = plan_shards(identity="a", shards=8, members=3, holders=holders, held=set())
    assert set(plan.acquire) <= {5, 6, 7} and len(plan.acquire) == 3


def test_surplus_shards_are_released_when_a_replica_joins_and_the_rest_renewed() -> None:
    held = {0, 1, 2, 3}
    holders = {s: ("a" if s in held else "b") for s in range(8)}
    plan = plan_shards(identity="a", shards=8, members=3, holders=holders, held=held)
    assert len(plan.release) == 1 and len(plan.renew) == 3 and plan.acquire == ()
    assert set(plan.release) | set(plan.renew) == held


def test_a_lease_still_naming_this_replica_may_be_taken_back() -> None:
    plan = plan_shards(identity="a", shards=2, members=2, holders={0: "a", 1: "b"}, held=set())
    assert plan.acquire == (0,)


def test_replicas_prefer_different_free_shards() -> None:
    firsts = {
        plan_shards(identity=name, shards=8, members=3, holders={}, held=set()).acquire
        for name in ("a", "b", "c")
    }
    assert len(firsts) > 1  # not all three racing for the same three shards
