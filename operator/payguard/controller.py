"""Owns the operator's runtime: the cache fed by watch events, the queue, workers with backoff, the
periodic resync, certificate wake-ups and the metrics endpoint. It knows no kopf: `handlers` calls in.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from payguard import metrics
from payguard.cache import ObjectCache
from payguard.cluster import Cluster
from payguard.kinds import (
    CHILD_TYPES,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PAYMENT_SERVICES,
    WATCHED_TYPES,
    ResourceType,
)
from payguard.reconcile import PassContext, reconcile
from payguard.settings import RunSettings
from payguard.triggers import ServiceKey, affected_services, known_services
from payguard.workqueue import WorkQueue

logger = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 60.0
GAUGE_REFRESH_SECONDS = 15.0


class Controller:
    """One per process: turns watch events into passes, one pass per PaymentService at a time."""

    def __init__(self, settings: RunSettings, cluster: Cluster) -> None:
        self.settings = settings
        self.cluster = cluster
        self.cache = ObjectCache()
        self.queue: WorkQueue[ServiceKey] = WorkQueue()
        self.context = PassContext.from_settings(settings, cluster=cluster, cache=self.cache)
        self._failures: dict[ServiceKey, int] = {}
        self._wakeups: dict[ServiceKey, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_metrics: Callable[[], None] | None = None

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Serves metrics, primes the cache, then starts the workers and the resync."""
        if self.settings.metrics_port and self._stop_metrics is None:
            # Once per controller: kopf retries a failed start-up, and a second bind would fail.
            self._stop_metrics = metrics.serve(
                port=self.settings.metrics_port, address=self.settings.metrics_address
            )
        # One list per kind before the first pass, so a restart compares against what exists instead of
        # re-applying everything: kopf gives no signal when its initial listing is complete.
        for resource in WATCHED_TYPES:
            await asyncio.to_thread(self._prime, resource)
        for key in known_services(self.cache):
            self.queue.add(key, urgent=False)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.settings.workers)]
        self._tasks.append(asyncio.create_task(self._resync()))
        self._tasks.append(asyncio.create_task(self._refresh_gauges()))
        logger.info("Started %d workers; watching %s", self.settings.workers, self._scope())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._stop_metrics is not None:
            self._stop_metrics()
            self._stop_metrics = None

    def _prime(self, resource: ResourceType) -> None:
        if self.settings.clusterwide or not resource.namespaced:
            items = self.cluster.list(resource)
        else:
            items = [
                item
                for namespace in self.settings.watched_namespaces
                for item in self.cluster.list(resource, namespace=namespace)
            ]
        if resource == PAYMENT_SERVICES:
            items = [item for item in items if self._selects(item)]
        self.cache.replace_all(resource.kind, items)

    # --- watch events --------------------------------------------------------------------------------

    def on_service_event(self, event: Mapping[str, Any]) -> None:
        metadata = event["object"]["metadata"]
        selected = self._selects(event["object"])
        # A service that stops matching is forgotten, as if deleted: its controls stay as they are.
        changed = self._remember(PAYMENT_SERVICES.kind, event if selected else {**event, "type": "DELETED"})
        if event.get("type") == "DELETED" or not selected:
            metrics.forget_service(namespace=metadata["namespace"], service=metadata["name"])
        elif changed:
            self.queue.add((metadata["namespace"], metadata["name"]))

    def on_object_event(self, resource: ResourceType, event: Mapping[str, Any]) -> None:
        if self._remember(resource.kind, event):
            keys = affected_services(
                resource,
                event["object"],
                self.cache,
                mesh_root_namespace=self.settings.mesh_root_namespace,
            )
            for key in keys:
                self.queue.add(key)

    def _selects(self, body: Mapping[str, Any]) -> bool:
        metadata = body["metadata"]
        return self.settings.selects(namespace=metadata["namespace"], labels=metadata.get("labels") or {})

    def _remember(self, kind: str, event: Mapping[str, Any]) -> bool:
        """Updates the cache; False when the event brings nothing the cache did not hold already.

        kopf's initial listing replays every object the start-up priming just cached: waking services for
        those would re-run a pass for the whole fleet on every restart.
        """
        body = event["object"]
        metadata = body["metadata"]
        namespace = metadata.get("namespace", "")
        if event.get("type") == "DELETED":
            self.cache.remove(kind, namespace=namespace, name=metadata["name"])
            return True
        known = self.cache.get(kind, namespace=namespace, name=metadata["name"])
        if known is not None and known["metadata"].get("resourceVersion") == metadata.get("resourceVersion"):
            return False
        self.cache.put(kind, body)
        return True

    # --- passes --------------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self._run_pass(key)
            finally:
                self.queue.done(key)

    async def _run_pass(self, key: ServiceKey) -> None:
        namespace, name = key
        body = self.cache.get(PAYMENT_SERVICES.kind, namespace=namespace, name=name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self._failures.pop(key, None)
            self._wake_for_certificates(key, None)
            return  # deleted: garbage collection removes the children through their ownerReferences
        try:
            report = await asyncio.to_thread(reconcile, body, self.context)
        except Exception:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures) * random.uniform(0.8, 1.2)
            logger.exception(
                "Failed to reconcile PaymentService %s/%s; retrying in %.1fs", namespace, name, delay
            )
            asyncio.get_running_loop().call_later(delay, self.queue.add, key)
            return
        self._failures.pop(key, None)
        self._wake_for_certificates(key, report.next_certificate_change)
        if report.writes:
            logger.info("Reconciled PaymentService %s/%s with %d writes", namespace, name, report.writes)

    def _wake_for_certificates(self, key: ServiceKey, moment: datetime | None) -> None:
        """One timer per service for the next certificate deadline: Expired shows with no other change."""
        previous = self._wakeups.pop(key, None)
        if previous is not None:
            previous.cancel()
        if moment is None:
            return
        delay = max((moment - datetime.now(UTC)).total_seconds() + 1, 0)  # just past the moment
        wake = functools.partial(self.queue.add, key, urgent=False)
        self._wakeups[key] = asyncio.get_running_loop().call_later(delay, wake)

    async def _resync(self) -> None:
        """A periodic pass for every PaymentService; with nothing changed it writes nothing."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            for key in known_services(self.cache):
                self.queue.add(key, urgent=False)

    async def _refresh_gauges(self) -> None:
        """Gauges are read from the cache on a timer, not per pass, so passes stay O(1) in the fleet."""
        while True:
            for kind in CHILD_TYPES:
                managed = [
                    obj
                    for obj in self.cache.list(kind)
                    if (obj["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
                ]
                metrics.MANAGED_OBJECTS.labels(kind=kind).set(len(managed))
            await asyncio.sleep(GAUGE_REFRESH_SECONDS)

    def _scope(self) -> str:
        if self.settings.clusterwide:
            return "all namespaces"
        return ", ".join(self.settings.namespaces) + f" (and reading {self.settings.mesh_root_namespace})"
