"""Sharded caches: which namespaces a replica keeps (pure), the cache's filter at every ingestion, the
fence holding a shard back until filled, and the fill/drop bookkeeping on acquire and loss."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from payguard.api import FencedError
from payguard.cache import ObjectCache
from payguard.cluster import Cluster
from payguard.fence import Fence
from payguard.kinds import (
    CLUSTER_ISSUERS,
    MESH_CONFIGS,
    NAMESPACES,
    NETWORK_POLICIES,
    PAYMENT_SERVICES,
    PODS,
    ResourceType,
)
from payguard.ownership import Ownership
from payguard.settings import Election, RunSettings
from payguard.sharding import keeps_namespace, shard_of
from payguard.workqueue import WorkQueue

SHARDS = 4
ROOT = "istio-system"


def namespace_in(shard: int, *, skip: int = 0) -> str:
    found = [f"ns{i}" for i in range(1000) if shard_of(f"ns{i}", shards=SHARDS) == shard]
    return found[skip]


def body(
    namespace: str, name: str, *, version: str = "1", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata = {"namespace": namespace, "name": name, "resourceVersion": version, "labels": labels or {}}
    return {"metadata": metadata, "spec": {"podSelector": {"matchLabels": {"app": name}}}}


# --- the pure decision -------------------------------------------------------------------------------


def test_a_replica_keeps_its_shards_namespaces_the_mesh_root_and_cluster_scoped_objects() -> None:
    mine, theirs = namespace_in(1), namespace_in(2)
    keeps = lambda ns: keeps_namespace(ns, shards=SHARDS, owned={1}, mesh_root_namespace=ROOT)  # noqa: E731
    assert keeps(mine)
    assert not keeps(theirs)
    assert keeps("")  # Namespaces, ClusterIssuers: every shard's passes read them
    assert keeps(ROOT)  # mesh-wide policies and the mesh config: read by every pass
    assert not keeps_namespace(mine, shards=SHARDS, owned=set(), mesh_root_namespace=ROOT)
    assert keeps_namespace(theirs, shards=SHARDS, owned=None, mesh_root_namespace=ROOT)  # one shard: all


# --- the cache's filter ------------------------------------------------------------------------------


def test_the_cache_keeps_only_accepted_namespaces_from_events_and_lists_and_drops_the_rest() -> None:
    mine, theirs = namespace_in(0), namespace_in(3)
    cache = ObjectCache()
    cache.put(NETWORK_POLICIES.kind, body(theirs, "held-before"))
    dropped = cache.keep_only(lambda ns: ns in ("", mine))
    assert dropped == 1
    assert cache.list(NETWORK_POLICIES.kind) == []
    assert cache.selecting(NETWORK_POLICIES.kind, namespace=theirs, labels={"app": "held-before"}) == []
    assert not cache.keeps(theirs) and cache.keeps(mine) and cache.keeps("")

    cache.put(NETWORK_POLICIES.kind, body(theirs, "event"))  # a watch event of another shard
    cache.put(NETWORK_POLICIES.kind, body(mine, "event"))
    assert [b["metadata"]["namespace"] for b in cache.list(NETWORK_POLICIES.kind)] == [mine]

    # A relist (the resync, a 410 Gone) respects the filter too, and reports only kept differences.
    changes = cache.replace(
        NETWORK_POLICIES.kind, [body(mine, "event", version="2"), body(theirs, "listed")], namespace=None
    )
    assert [c.body["metadata"]["namespace"] for c in changes] == [mine]
    assert cache.count(NETWORK_POLICIES.kind) == 1
    cache.put(NAMESPACES.kind, {"metadata": {"name": theirs}})  # cluster-scoped: kept
    assert cache.count(NAMESPACES.kind) == 1

    cache.keep_only(None)  # all again (nothing is refilled by it: the owner relists)
    cache.put(NETWORK_POLICIES.kind, body(theirs, "event"))
    assert cache.count(NETWORK_POLICIES.kind) == 2


# --- the fence gate ----------------------------------------------------------------------------------


def test_a_gated_fence_holds_a_shard_just_acquired_back_until_it_is_filled() -> None:
    namespace = namespace_in(2)
    fence = Fence(shards=SHARDS, renew_deadline=10.0, gated=True, clock=lambda: 100.0)
    fence.renewed(2, sent_at=100.0)
    assert fence.held() == {2}  # held (the elector keeps renewing it) ...
    assert not fence.owns(namespace)  # ... but no pass runs and nothing is written yet
    with pytest.raises(FencedError, match="cache of shard 2 is still being filled"):
        fence.check(namespace, "Apply")
    fence.filled(2)
    fence.check(namespace, "Apply")
    fence.renewed(2, sent_at=100.0)  # a renewal does not hold it back again
    assert fence.owns(namespace)
    fence.revoke(2)
    fence.renewed(2, sent_at=100.0)  # acquired again: its objects were dropped meanwhile
    assert fence.filling(2) and not fence.owns(namespace)


def test_an_ungated_fence_one_shard_a_warm_standby_never_waits_for_a_fill() -> None:
    fence = Fence(shards=1, renew_deadline=10.0, clock=lambda: 100.0)
    fence.renewed(0, sent_at=100.0)
    assert fence.owns("payments")


# --- fill and drop -----------------------------------------------------------------------------------


class FakeInformer:
    def __init__(self, resource: ResourceType, namespace: str | None) -> None:
        self.resource, self.namespace, self.relisted = resource, namespace, 0
        self.lists_begun = 7  # lists made before the shard was taken

    def relist(self) -> None:
        self.relisted += 1

    def list_begins(self) -> int:
        """What the informer thread does before each list: the number of the attempt."""
        self.lists_begun += 1
        return self.lists_begun


def ownership(shards: int, namespaces: tuple[str, ...] = ()) -> tuple[Ownership, ObjectCache, WorkQueue[Any]]:
    election = Election(identity="replica-a", namespace="payguard-system", shards=shards)
    settings = RunSettings(namespaces=namespaces, election=election, mesh_root_namespace=ROOT)
    fence = Fence(shards=shards, renew_deadline=10.0, gated=shards > 1)
    cache, queue = ObjectCache(), WorkQueue[Any]()
    owner = Ownership(settings, Cluster(client.ApiClient(), fence=fence), cache, queue)
    return owner, cache, queue


def service(namespace: str, name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": "1"}, "spec": {}}


def queued(queue: WorkQueue[Any]) -> set[Any]:
    return set(queue._queued)


def test_a_shard_acquired_is_filled_by_a_relist_before_its_passes_and_dropped_when_lost() -> None:
    owner, cache, queue = ownership(SHARDS)
    mine, other, theirs = namespace_in(1), namespace_in(1, skip=1), namespace_in(2)
    informers = {
        "services": FakeInformer(PAYMENT_SERVICES, None),
        "policies": FakeInformer(NETWORK_POLICIES, None),
        "issuers": FakeInformer(CLUSTER_ISSUERS, None),  # cluster-scoped: kept always, never refilled
        "mesh": FakeInformer(MESH_CONFIGS, ROOT),  # the mesh root's: kept always
    }
    owner.informers = list(informers.values())  # type: ignore[arg-type]
    cache.replace(PAYMENT_SERVICES.kind, [service(mine, "a"), service(theirs, "b"), service(ROOT, "c")])
    assert {b["metadata"]["namespace"] for b in cache.list(PAYMENT_SERVICES.kind)} == {ROOT}  # nothing owned

    owner.fence.renewed(1, sent_at=owner.fence._clock())  # what the elector does, then tells
    owner.changed(1, True)
    assert [i.relisted for i in informers.values()] == [1, 1, 0, 0]
    assert not owner.fence.owns(mine)
    # A list begun before the shard was taken may have dropped its objects on early pages: not a fill.
    cache.replace(PAYMENT_SERVICES.kind, [service(mine, "a")])
    owner.listed(PAYMENT_SERVICES, None, 7)
    assert not owner.fence.owns(mine)
    cache.replace(PAYMENT_SERVICES.kind, [service(mine, "a"), service(other, "d"), service(theirs, "b")])
    owner.listed(PAYMENT_SERVICES, None, informers["services"].list_begins())
    assert not owner.fence.owns(mine), "one kind listed is not a filled shard"
    owner.listed(CLUSTER_ISSUERS, None, informers["issuers"].list_begins())  # not awaited
    assert not owner.fence.owns(mine)
    cache.put(NETWORK_POLICIES.kind, body(mine, "np"))
    owner.listed(NETWORK_POLICIES, None, informers["policies"].list_begins())
    assert owner.fence.owns(mine) and owner.fence.owns(other)
    assert queued(queue) == {(mine, "a"), (other, "d")}
    assert cache.count(PAYMENT_SERVICES.kind) == 2  # theirs is not kept

    owner.changed(1, False)
    assert cache.count(PAYMENT_SERVICES.kind) == 0
    assert cache.count(NETWORK_POLICIES.kind) == 0
    assert not cache.keeps(mine)


def test_a_shard_lost_while_filling_is_never_released_to_passes_by_a_late_list() -> None:
    owner, _, _ = ownership(SHARDS)
    owner.informers = [FakeInformer(PAYMENT_SERVICES, None)]  # type: ignore[list-item]
    owner.fence.renewed(1, sent_at=owner.fence._clock())
    owner.changed(1, True)
    owner.fence.revoke(1)
    owner.changed(1, False)
    owner.fence.renewed(1, sent_at=owner.fence._clock())  # acquired again: a new fill
    owner.changed(1, True)
    assert owner.informers[0].relisted == 2  # type: ignore[attr-defined]
    assert owner.fence.filling(1)
    owner.listed(PAYMENT_SERVICES, None, 8)
    assert owner.fence.owns(namespace_in(1))


def test_with_namespace_scoped_informers_only_those_of_the_shard_are_relisted() -> None:
    mine, theirs = namespace_in(3), namespace_in(0)
    owner, _, _ = ownership(SHARDS, namespaces=(mine, theirs))
    ours, other = FakeInformer(PODS, mine), FakeInformer(PODS, theirs)
    owner.informers = [ours, other]  # type: ignore[list-item]
    owner.fence.renewed(3, sent_at=owner.fence._clock())
    owner.changed(3, True)
    assert (ours.relisted, other.relisted) == (1, 0)
    owner.listed(PODS, theirs, other.list_begins())
    assert not owner.fence.owns(mine)
    owner.listed(PODS, mine, ours.list_begins())
    assert owner.fence.owns(mine)


def test_one_shard_keeps_everything_warm_and_queues_at_once() -> None:
    owner, cache, queue = ownership(1)
    informer = FakeInformer(PAYMENT_SERVICES, None)
    owner.informers = [informer]  # type: ignore[list-item]
    cache.replace(PAYMENT_SERVICES.kind, [service("payments", "a"), service("edge", "b")])
    assert cache.count(PAYMENT_SERVICES.kind) == 2  # a standby caches everything
    owner.fence.renewed(0, sent_at=owner.fence._clock())
    owner.changed(0, True)
    assert informer.relisted == 0
    assert queued(queue) == {("payments", "a"), ("edge", "b")}
    owner.changed(0, False)
    assert cache.count(PAYMENT_SERVICES.kind) == 2
