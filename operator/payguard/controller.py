"""Owns the operator's runtime: informers that keep the cache true, the queue, workers with backoff, the
periodic resync, certificate wake-ups, the metrics and readiness endpoint. It knows no kopf."""

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
from payguard.api import ApiError, FencedError
from payguard.cache import ObjectCache
from payguard.cluster import Cluster
from payguard.informer import Informer, Listener
from payguard.kinds import (
    CHILD_TYPES,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    MESH_CONFIGS,
    NAMESPACES,
    OPTIONAL_TYPES,
    PAYMENT_SERVICES,
    WATCHED_TYPES,
    ResourceType,
    crd_name,
)
from payguard.lifecycle import ControlsUnobservable, finalize
from payguard.ownership import Ownership, count_cached
from payguard.reconcile import PassContext, log_fields, reconcile
from payguard.retention import has_finalizer
from payguard.settings import RunSettings
from payguard.triggers import ServiceKey, affected_services, known_services
from payguard.workqueue import WorkQueue

logger = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 60.0
GAUGE_REFRESH_SECONDS = 15.0
WAIT_LOG_SECONDS = 5


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
        self._informers: list[Informer] = []
        self._answered: set[tuple[str, str | None]] = set()  # (kind, namespace) listed or found missing
        self._stop_metrics: Callable[[], None] | None = None
        self._answered_all = False  # every informer answered once: the workers are about to start
        self.ownership: Ownership | None = None
        if settings.election is not None and cluster.fence is not None:
            self.ownership = Ownership(settings, cluster, self.cache, self.queue)

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Serves metrics and health, then starts one informer per watched kind and scope; the workers
        start once every informer has listed (or found its kind not served), in the background, so a
        start-up during an outage waits instead of failing."""
        loop = asyncio.get_running_loop()
        if self.settings.metrics_port and self._stop_metrics is None:
            # Once per controller: kopf retries a failed start-up, and a second bind would fail.
            self._stop_metrics = metrics.serve(
                port=self.settings.metrics_port, address=self.settings.metrics_address, ready=self.not_ready
            )
        listener = Listener(
            listed=lambda *args: loop.call_soon_threadsafe(self._on_listed, *args),
            event=lambda *args: loop.call_soon_threadsafe(self.on_object_event, *args),
            unavailable=lambda *args: loop.call_soon_threadsafe(self._on_unavailable, *args),
        )
        sharded = self.cluster.fence is not None and self.cluster.fence.gated  # caches only its shards
        keep = self.cache.keeps if sharded else None
        new = functools.partial(Informer, self.cluster, listener=listener, keep=keep)
        self._informers = [
            new(resource, namespace=namespace, name=self._name(resource))
            for resource in WATCHED_TYPES
            for namespace in self._scopes(resource)
        ]
        if self.ownership is not None:
            self.ownership.informers = self._informers
        for informer in self._informers:
            informer.start()
        self._tasks = [asyncio.create_task(self._start_workers())]

    async def _start_workers(self) -> None:
        waited = 0
        while pending := self._unanswered():
            if waited % (WAIT_LOG_SECONDS * 10) == 0:
                logger.info("Waiting for the API server to list %s", ", ".join(pending))
            await asyncio.sleep(0.1)
            waited += 1
        self._answered_all = True
        for key in known_services(self.cache):
            self.queue.add(key, urgent=False)
        self._tasks += [asyncio.create_task(self._work()) for _ in range(self.settings.workers)]
        self._tasks.append(asyncio.create_task(self._resync()))
        self._tasks.append(asyncio.create_task(self._refresh_gauges()))
        if self.ownership is not None:  # candidates only once their caches are warm
            self._tasks.append(asyncio.create_task(self.ownership.elector.run()))
        logger.info("Started %d workers; watching %s", self.settings.workers, self._scope())

    async def stop(self) -> None:
        if self.ownership is not None:
            for task in self._tasks:  # no new round: then every shard is released after its passes
                task.cancel()
            await self.ownership.elector.stop()
        for informer in self._informers:
            informer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._stop_metrics is not None:
            self._stop_metrics()
            self._stop_metrics = None

    def not_ready(self) -> str | None:
        """Why the operator is not ready to serve (readiness probe), or None when it is."""
        pending = self._unanswered()
        if pending:
            return f"waiting for the API server to list {', '.join(pending)}"
        optional = {resource.kind for resource in OPTIONAL_TYPES}
        unavailable = {k: why for k, why in self.cache.unavailable().items() if k not in optional}
        if unavailable:
            return "; ".join(f"{kind}: {reason}" for kind, reason in sorted(unavailable.items()))
        return None

    def _scopes(self, resource: ResourceType) -> list[str | None]:
        if resource == MESH_CONFIGS:
            return [self.settings.mesh_root_namespace]
        if self.settings.clusterwide or not resource.namespaced:
            return [None]
        return list(self.settings.watched_namespaces)

    def _name(self, resource: ResourceType) -> str | None:
        """Kinds read by name only, because RBAC grants no more."""
        return self.settings.mesh_config_name if resource == MESH_CONFIGS else None

    def _unanswered(self) -> list[str]:
        """Informers that have neither listed nor learnt that their kind is not served."""
        return [i.scope for i in self._informers if (i.resource.kind, i.namespace) not in self._answered]

    # --- informers -----------------------------------------------------------------------------------

    def _on_listed(
        self, resource: ResourceType, namespace: str | None, items: list[dict[str, Any]], attempt: int
    ) -> None:
        """A fresh list replaces what the cache knew; every difference wakes the services it affects.

        Not at start-up: the workers then start with one pass for every known service, so waking the
        services of each listed object would only queue the fleet again, object by object."""
        starting = not self._answered_all
        self._answered.add((resource.kind, namespace))
        was_unavailable = resource.kind in self.cache.unavailable()
        self.cache.set_unavailable(resource.kind, None)
        if resource == PAYMENT_SERVICES:
            items = [item for item in items if self._selects(item)]
        changes = self.cache.replace(resource.kind, items, namespace=namespace)
        if self.ownership is not None:  # after the replace: a shard filled by it gets its passes queued
            self.ownership.listed(resource, namespace, attempt)
        if was_unavailable:
            logger.info("%s is served again", crd_name(resource))
            self._queue_all()  # every service judged the kind unobservable meanwhile
        if starting:
            return
        for change in changes:
            if resource == PAYMENT_SERVICES:
                metadata = change.body["metadata"]
                if change.new is None:
                    metrics.forget_service(namespace=metadata["namespace"], service=metadata["name"])
                else:
                    self.queue.add((metadata["namespace"], metadata["name"]))
                continue
            for body in (change.old, change.new):
                if body is not None:
                    self._queue_affected(resource, body)

    def _on_unavailable(
        self, resource: ResourceType, namespace: str | None, reason: str, attempt: int
    ) -> None:
        self._answered.add((resource.kind, namespace))
        if self.cache.unavailable().get(resource.kind) != reason:
            self.cache.set_unavailable(resource.kind, reason)
            # Nothing of that kind can be seen now: forget what was cached, and let every pass say so.
            self.cache.replace(resource.kind, [], namespace=namespace)
            self._queue_all()
        if self.ownership is not None:  # a shard being filled waits no longer for a kind not served
            self.ownership.listed(resource, namespace, attempt)

    def _queue_all(self) -> None:
        for key in known_services(self.cache):
            self.queue.add(key)

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
        if not self.cache.keeps(event["object"]["metadata"].get("namespace", "")):
            return  # another replica's shard
        if resource == PAYMENT_SERVICES:
            self.on_service_event(event)
            return
        metadata = event["object"]["metadata"]
        old = self.cache.get(resource.kind, namespace=metadata.get("namespace", ""), name=metadata["name"])
        if self._remember(resource.kind, event):
            # Both: a pod relabelled away from a selector concerns the service it left.
            for body in (old, event["object"]):
                if body is not None:
                    self._queue_affected(resource, body)

    def _queue_affected(self, resource: ResourceType, body: Mapping[str, Any]) -> None:
        mesh_root = self.settings.mesh_root_namespace
        for key in affected_services(resource, body, self.cache, mesh_root_namespace=mesh_root):
            self.queue.add(key)

    def _selects(self, body: Mapping[str, Any]) -> bool:
        metadata = body["metadata"]
        return self.settings.selects(namespace=metadata["namespace"], labels=metadata.get("labels") or {})

    def _remember(self, kind: str, event: Mapping[str, Any]) -> bool:
        """Updates the cache; False when the event brings nothing the cache did not hold already.

        An event may bring a version a list already cached: waking services for it would run passes for
        nothing.
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
        kept = self.cache.put(kind, body)
        # A pod's status moves often; what the cache keeps of it rarely does.
        return known is None or _unversioned(known) != _unversioned(kept)

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
        if self.cluster.fence is not None and not self.cluster.fence.owns(namespace):
            return  # another replica's shard: queued again when this one acquires it
        body = self.cache.get(PAYMENT_SERVICES.kind, namespace=namespace, name=name)
        deleting = body is not None and bool(body["metadata"].get("deletionTimestamp"))
        if body is None or deleting or self._terminating(namespace):
            self._failures.pop(key, None)
            self._wake_for_certificates(key, None)
            if body is not None and deleting and has_finalizer(body):
                await self._finalize(key, body)
            return
        try:
            report = await asyncio.to_thread(reconcile, body, self.context)
        except FencedError as error:
            metrics.FENCED_WRITES.inc()
            logger.warning("Stopped the pass of PaymentService %s/%s: %s", *key, error)
            return
        except ApiError as error:
            # An expected answer (a status patch refused during an outage, a namespace going away):
            # retried, and logged without a traceback.
            if error.status != 404 and not self._terminating(namespace):
                delay = self._retry_later(key)
                logger.warning(
                    "Failed to reconcile PaymentService %s/%s: %s; retrying in %.1fs", *key, error, delay
                )
            return
        except Exception:
            delay = self._retry_later(key)
            logger.exception(
                "Failed to reconcile PaymentService %s/%s; retrying in %.1fs", namespace, name, delay
            )
            return
        self._failures.pop(key, None)
        moments = [m for m in (report.next_certificate_change, report.next_exception_end) if m is not None]
        self._wake_for_certificates(key, min(moments, default=None))
        if report.writes:
            logger.info(
                "Reconciled PaymentService %s/%s with %d writes",
                namespace,
                name,
                report.writes,
                extra=log_fields(namespace=namespace, name=name),
            )
        else:
            logger.debug("Reconciled PaymentService %s/%s with no write", namespace, name)

    async def _finalize(self, key: ServiceKey, body: dict[str, Any]) -> None:
        """Carries out the deletionPolicy, then releases the PaymentService; retried until it is done."""
        try:
            await asyncio.to_thread(
                finalize,
                body,
                cache=self.cache,
                cluster=self.cluster,
                now=datetime.now(UTC),
                namespace_terminating=self._terminating(key[0]),
            )
        except FencedError as error:
            metrics.FENCED_WRITES.inc()
            logger.warning("Stopped finalizing PaymentService %s/%s: %s", *key, error)
        except (ApiError, ControlsUnobservable) as error:
            delay = self._retry_later(key)
            logger.warning(
                "Failed to finalize PaymentService %s/%s: %s; retrying in %.1fs", *key, error, delay
            )
        except Exception:
            delay = self._retry_later(key)
            logger.exception("Failed to finalize PaymentService %s/%s; retrying in %.1fs", *key, delay)
        else:
            self._failures.pop(key, None)

    def _retry_later(self, key: ServiceKey) -> float:
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay: float = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures) * random.uniform(0.8, 1.2)
        asyncio.get_running_loop().call_later(delay, self.queue.add, key)
        return delay

    def _terminating(self, namespace: str) -> bool:
        """A namespace being deleted takes its objects with it; writing into it only earns refusals."""
        found = self.cache.get(NAMESPACES.kind, namespace="", name=namespace)
        return bool(found and found["metadata"].get("deletionTimestamp"))

    def _wake_for_certificates(self, key: ServiceKey, moment: datetime | None) -> None:
        """One timer per service for the next deadline, a certificate's or a break-glass exception's end:
        Expired shows, and an allowance goes, with no other change."""
        previous = self._wakeups.pop(key, None)
        if previous is not None:
            previous.cancel()
        if moment is None:
            return
        delay = max((moment - datetime.now(UTC)).total_seconds() + 1, 0)  # just past the moment
        wake = functools.partial(self.queue.add, key, urgent=False)
        self._wakeups[key] = asyncio.get_running_loop().call_later(delay, wake)

    async def _resync(self) -> None:
        """Every period: checks each kind's cache against a list read while its watch goes on (a miss
        relists that kind), one kind at a time, then a pass for every PaymentService (writing nothing
        when nothing changed)."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            for informer in self._informers:
                resource, namespace = informer.resource, informer.namespace
                cached = functools.partial(self.cache.versions, resource.kind, namespace=namespace)
                admits = self._selects if resource == PAYMENT_SERVICES else lambda _body: True
                await asyncio.to_thread(informer.check, cached=cached, admits=admits)
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
            count_cached(self.cache)
            await asyncio.sleep(GAUGE_REFRESH_SECONDS)

    def _scope(self) -> str:
        listed = ", ".join(self.settings.namespaces) + f" (and reading {self.settings.mesh_root_namespace})"
        return "all namespaces" if self.settings.clusterwide else listed


def _unversioned(body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = {key: value for key, value in body["metadata"].items() if key != "resourceVersion"}
    return {**body, "metadata": metadata}
