"""Owns what this replica's shards mean to the runtime: the elector, a pass for every PaymentService of
a shard it takes, and its per-service gauges dropped when a shard goes."""

from __future__ import annotations

import asyncio

from payguard import metrics
from payguard.cache import ObjectCache
from payguard.cluster import Cluster
from payguard.coordination import LeaseApi
from payguard.elector import Elector
from payguard.settings import RunSettings
from payguard.triggers import ServiceKey, known_services
from payguard.workqueue import WorkQueue


class Ownership:
    """One per process, with leader election only (`settings.election` and the cluster's fence set)."""

    def __init__(
        self, settings: RunSettings, cluster: Cluster, cache: ObjectCache, queue: WorkQueue[ServiceKey]
    ) -> None:
        election, fence = settings.election, cluster.fence
        assert election is not None and fence is not None
        self.fence = fence
        self._cache = cache
        self._queue = queue
        leases = LeaseApi(cluster.api_client, namespace=election.namespace, timeout=election.retry_period)
        self.elector = Elector(
            election, leases=leases, fence=fence, changed=self.changed, drained=self.drained
        )

    def changed(self, shard: int, held: bool) -> None:
        """A shard taken: each of its PaymentServices gets a pass, from the warm cache. A shard left: its
        per-service gauges go, so only the owner's series remain for alerts."""
        for key in known_services(self._cache):
            if self.fence.shard(key[0]) == shard:
                if held:
                    self._queue.add(key)
                else:
                    metrics.forget_service(namespace=key[0], service=key[1])

    async def drained(self, shard: int) -> None:
        """Returns once no pass of the shard runs (the fence already refuses new writes for it)."""
        while any(self.fence.shard(key[0]) == shard for key in self._queue.active()):
            await asyncio.sleep(0.05)
