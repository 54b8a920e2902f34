"""Owns what this replica's shards mean to the runtime: the elector; with more than one shard, a cache
that holds only the owned shards' namespaces (filled by a relist before a shard's first pass, dropped
when the shard goes); a pass for every PaymentService of a shard taken; its gauges dropped when it goes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from payguard import metrics
from payguard.cache import ObjectCache
from payguard.cluster import Cluster
from payguard.coordination import LeaseApi
from payguard.elector import Elector
from payguard.fence import Fence
from payguard.informer import Informer
from payguard.kinds import WATCHED_TYPES, ResourceType
from payguard.settings import RunSettings
from payguard.sharding import keeps_namespace
from payguard.triggers import ServiceKey, known_services
from payguard.workqueue import WorkQueue

logger = logging.getLogger(__name__)
Scope = tuple[str, str | None]  # (kind, namespace) of one informer


class Ownership:
    """One per process, with leader election only (`settings.election` and the cluster's fence set).

    Sharded (the fence is gated), the cache keeps the namespaces of the shards held. A shard acquired is
    held back by the fence until every informer that may hold its objects has listed since: a pass on a
    half-filled cache would take missing children for deleted ones. Fail closed: if a list fails, the
    shard's passes wait."""

    def __init__(
        self, settings: RunSettings, cluster: Cluster, cache: ObjectCache, queue: WorkQueue[ServiceKey]
    ) -> None:
        election, fence = settings.election, cluster.fence
        assert election is not None and fence is not None
        self.fence: Fence = fence
        self.informers: Sequence[Informer] = ()  # set by the controller once it made them
        self._mesh_root = settings.mesh_root_namespace
        self._cache = cache
        self._queue = queue
        self._owned: set[int] = set()
        # shard -> (started, the lists awaited: each informer's list count when the shard was taken)
        self._filling: dict[int, tuple[float, dict[Scope, int]]] = {}
        leases = LeaseApi(cluster.api_client, namespace=election.namespace, timeout=election.retry_period)
        self.elector = Elector(
            election, leases=leases, fence=fence, changed=self.changed, drained=self.drained
        )
        if fence.gated:
            cache.keep_only(self.keeps)

    def keeps(self, namespace: str) -> bool:
        owned = self._owned if self.fence.gated else None
        return keeps_namespace(
            namespace, shards=self.fence.shards, owned=owned, mesh_root_namespace=self._mesh_root
        )

    def changed(self, shard: int, held: bool) -> None:
        """A shard taken: filled (sharded), then each of its PaymentServices gets a pass. A shard left: its
        per-service gauges go, so only the owner's series remain for alerts, and its objects are dropped."""
        if not held:
            for key in self._services(shard):
                metrics.forget_service(namespace=key[0], service=key[1])
        if not self.fence.gated:
            if held:
                self._queue_shard(shard)
            return
        if held:
            self._owned.add(shard)
            self._fill(shard)
        else:
            self._owned.discard(shard)
            self._filling.pop(shard, None)
            dropped = self._cache.keep_only(self.keeps)
            logger.info("Dropped %d cached objects of shard %d", dropped, shard)
            count_cached(self._cache)

    def listed(self, resource: ResourceType, namespace: str | None, attempt: int) -> None:
        """An informer listed (or found its kind not served): the shards awaiting a list it began after
        they were taken are filled once no other list is awaited."""
        scope = (resource.kind, namespace)
        for shard, (_, awaited) in list(self._filling.items()):
            if scope in awaited and attempt > awaited[scope]:
                del awaited[scope]
                if not awaited:
                    self._filled(shard)

    def _filled(self, shard: int) -> None:
        started, _ = self._filling.pop(shard)
        self.fence.filled(shard)
        logger.info(
            "Filled the cache for shard %d in %.2fs (%d PaymentServices)",
            shard,
            time.monotonic() - started,
            len(self._services(shard)),
        )
        count_cached(self._cache)
        self._queue_shard(shard)

    def _fill(self, shard: int) -> None:
        """Relists every informer that may hold the shard's objects (a relist already pending is not
        repeated); the fence holds the shard back until each has listed since."""
        informers = [i for i in self.informers if self._may_hold(i, shard)]
        # Read after the shard joined what the cache keeps: a later list keeps the shard on every page.
        awaited = {(i.resource.kind, i.namespace): i.lists_begun for i in informers}
        self._filling[shard] = (time.monotonic(), awaited)
        logger.info("Filling the cache for shard %d: relisting %d kinds", shard, len(informers))
        for informer in informers:
            informer.relist()
        if not informers:
            self._filled(shard)

    def _may_hold(self, informer: Informer, shard: int) -> bool:
        """Namespaced kinds, all namespaces or one of the shard's; never the mesh root's (kept always)."""
        namespace = informer.namespace
        if not informer.resource.namespaced or namespace == self._mesh_root:
            return False
        return namespace is None or self.fence.shard(namespace) == shard

    def _services(self, shard: int) -> list[ServiceKey]:
        return [key for key in known_services(self._cache) if self.fence.shard(key[0]) == shard]

    def _queue_shard(self, shard: int) -> None:
        for key in self._services(shard):
            self._queue.add(key)

    async def drained(self, shard: int) -> None:
        """Returns once no pass of the shard runs (the fence already refuses new writes for it)."""
        while any(self.fence.shard(key[0]) == shard for key in self._queue.active()):
            await asyncio.sleep(0.05)


def count_cached(cache: ObjectCache) -> None:
    """The cache's size per kind, as a gauge: with shards, each replica's share."""
    for resource in WATCHED_TYPES:
        metrics.CACHED_OBJECTS.labels(kind=resource.kind).set(cache.count(resource.kind))
