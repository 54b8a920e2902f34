"""Owns the kopf wiring: watches feed the cache and queue PaymentServices; workers run the reconcile pass.

Handlers hold no business logic. kopf watches PaymentServices and every kind payguard manages or reads
for posture; each event updates the in-memory cache and queues the PaymentServices it may affect. A few
workers take keys off the queue and run the same level-based pass in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
import prometheus_client

from payguard import metrics
from payguard.cache import ObjectCache
from payguard.cluster import Cluster, load_api_client
from payguard.kinds import (
    ANNOTATION_PREFIX,
    CERTIFICATE_NAME_ANNOTATION,
    CERTIFICATES,
    CHILD_TYPES,
    FINALIZER,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    OBSERVED_TYPES,
    PAYMENT_SERVICES,
    SERVICE_LABEL,
    WATCHED_TYPES,
    ResourceType,
)
from payguard.ratelimit import RateLimiter
from payguard.reconcile import PassContext, reconcile
from payguard.settings import RunSettings
from payguard.workqueue import WorkQueue

logger = logging.getLogger(__name__)
ServiceKey = tuple[str, str]  # (namespace, name)
MAX_BACKOFF_SECONDS = 60.0
GAUGE_REFRESH_SECONDS = 15.0


@dataclass
class Runtime:
    """Everything the handlers share, kept in kopf's memo."""

    settings: RunSettings
    cluster: Cluster
    cache: ObjectCache = field(default_factory=ObjectCache)
    queue: WorkQueue[ServiceKey] = field(default_factory=WorkQueue)
    failures: dict[ServiceKey, int] = field(default_factory=dict)
    wakeups: dict[ServiceKey, asyncio.TimerHandle] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def context(self) -> PassContext:
        return PassContext(
            cluster=self.cluster, cache=self.cache, mesh_root_namespace=self.settings.mesh_root_namespace
        )


def _runtime(memo: kopf.Memo) -> Runtime:
    """The shared runtime, made on first use: kopf runs startup before login, and logs in again on 401."""
    if "runtime" not in memo:
        settings: RunSettings = memo["settings"]
        limiter = RateLimiter(qps=settings.qps, burst=settings.burst)
        cluster = Cluster(load_api_client(settings.kubeconfig), limiter=limiter)
        memo["runtime"] = Runtime(settings=settings, cluster=cluster)
    runtime: Runtime = memo["runtime"]
    return runtime


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """kopf watches with the same credentials the pass writes with (kubeconfig, or in-cluster token)."""
    configuration = _runtime(memo).cluster.api_client.configuration
    # Newer clients keep the token under "BearerToken", older ones under "authorization".
    header = configuration.get_api_key_with_prefix("BearerToken")
    header = header or configuration.get_api_key_with_prefix("authorization")
    scheme, _space, token = str(header or "").partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Moves kopf's names to payguard.dev, primes the cache, then starts the workers and the resync."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.enabled = False  # payguard posts its own Events, with stable reasons
    settings.watching.server_timeout = 300

    runtime = _runtime(memo)
    if runtime.settings.metrics_port:
        prometheus_client.start_http_server(
            runtime.settings.metrics_port, addr=runtime.settings.metrics_address
        )
    # One list per kind before the first pass, so a restart compares against what exists instead of
    # re-applying everything: kopf gives no signal when its initial listing is complete.
    for resource in WATCHED_TYPES:
        await asyncio.to_thread(_prime, runtime, resource)
    for namespace, name in sorted(_service_keys(runtime)):
        runtime.queue.add((namespace, name), urgent=False)
    runtime.tasks = [asyncio.create_task(_worker(runtime)) for _ in range(runtime.settings.workers)]
    runtime.tasks.append(asyncio.create_task(_resync(runtime)))
    runtime.tasks.append(asyncio.create_task(_refresh_gauges(runtime)))
    logger.info("Started %d workers; watching %s", runtime.settings.workers, _scope(runtime.settings))


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    runtime = _runtime(memo)
    for task in runtime.tasks:
        task.cancel()
    for task in runtime.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


@kopf.on.event(PAYMENT_SERVICES.group, PAYMENT_SERVICES.version, PAYMENT_SERVICES.plural)
async def payment_service_changed(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    runtime = _runtime(memo)
    body = event["object"]
    metadata = body["metadata"]
    selected = _selected(runtime.settings, metadata.get("labels") or {})
    # A service that stops matching the selector is forgotten, as if deleted: its controls stay as they are.
    changed = _remember(
        runtime.cache, PAYMENT_SERVICES.kind, event if selected else {**event, "type": "DELETED"}
    )
    if event.get("type") == "DELETED" or not selected:
        metrics.forget_service(namespace=metadata["namespace"], service=metadata["name"])
    elif changed:
        runtime.queue.add((metadata["namespace"], metadata["name"]))


def _selected(settings: RunSettings, labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in settings.selector)


def _child_event_handler(resource: ResourceType) -> None:
    @kopf.on.event(resource.group, resource.version, resource.plural, id=f"{resource.plural}-changed")
    async def child_changed(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
        runtime = _runtime(memo)
        if _remember(runtime.cache, resource.kind, event):
            for key in _affected_services(runtime, resource, event["object"]):
                runtime.queue.add(key)


for _resource in (*CHILD_TYPES.values(), *OBSERVED_TYPES.values()):
    _child_event_handler(_resource)


def _remember(cache: ObjectCache, kind: str, event: Mapping[str, Any]) -> bool:
    """Updates the cache; False when the event brings nothing the cache did not hold already.

    kopf's initial listing replays every object the start-up priming just cached: waking services for
    those would re-run a pass for the whole fleet on every restart.
    """
    body = event["object"]
    metadata = body["metadata"]
    namespace = metadata.get("namespace", "")
    if event.get("type") == "DELETED":
        cache.remove(kind, namespace=namespace, name=metadata["name"])
        return True
    known = cache.get(kind, namespace=namespace, name=metadata["name"])
    if known is not None and known["metadata"].get("resourceVersion") == metadata.get("resourceVersion"):
        return False
    cache.put(kind, body)
    return True


def _affected_services(runtime: Runtime, resource: ResourceType, obj: Mapping[str, Any]) -> list[ServiceKey]:
    """Our own child wakes its parent; anything else wakes every service it may weaken, widen or sign for."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace", "")
    labels = metadata.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and labels.get(SERVICE_LABEL):
        return [(namespace, labels[SERVICE_LABEL])]
    if resource.kind == "CertificateRequest":
        # Signed for one of our Certificates: wake the service that owns that Certificate.
        certificate_name = (metadata.get("annotations") or {}).get(CERTIFICATE_NAME_ANNOTATION, "")
        owner = runtime.cache.get(CERTIFICATES.kind, namespace=namespace, name=certificate_name)
        service = ((owner or {}).get("metadata", {}).get("labels") or {}).get(SERVICE_LABEL)
        return [(namespace, service)] if service else []
    if not resource.namespaced or namespace == runtime.settings.mesh_root_namespace:
        return sorted(_service_keys(runtime))
    return sorted(_service_keys(runtime, namespace=namespace))


def _service_keys(runtime: Runtime, *, namespace: str | None = None) -> set[ServiceKey]:
    """Known PaymentServices, all or one namespace's (read from the namespace index, not filtered)."""
    namespaces = None if namespace is None else [namespace]
    return {
        (body["metadata"]["namespace"], body["metadata"]["name"])
        for body in runtime.cache.list(PAYMENT_SERVICES.kind, namespaces=namespaces)
    }


def _prime(runtime: Runtime, resource: ResourceType) -> None:
    if runtime.settings.clusterwide or not resource.namespaced:
        items = runtime.cluster.list(resource)
    else:
        items = [
            item
            for ns in runtime.settings.namespaces
            for item in runtime.cluster.list(resource, namespace=ns)
        ]
    runtime.cache.replace_all(resource.kind, items)


async def _worker(runtime: Runtime) -> None:
    while True:
        key = await runtime.queue.get()
        try:
            await _run_pass(runtime, key)
        finally:
            runtime.queue.done(key)


async def _run_pass(runtime: Runtime, key: ServiceKey) -> None:
    namespace, name = key
    body = runtime.cache.get(PAYMENT_SERVICES.kind, namespace=namespace, name=name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        runtime.failures.pop(key, None)
        _wake_for_certificates(runtime, key, None)
        return  # deleted: garbage collection removes the children through their ownerReferences
    try:
        report = await asyncio.to_thread(reconcile, body, runtime.context)
    except Exception:
        failures = runtime.failures[key] = runtime.failures.get(key, 0) + 1
        delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures) * random.uniform(0.8, 1.2)
        logger.exception(
            "Failed to reconcile PaymentService %s/%s; retrying in %.1fs", namespace, name, delay
        )
        asyncio.get_running_loop().call_later(delay, runtime.queue.add, key)
        return
    runtime.failures.pop(key, None)
    _wake_for_certificates(runtime, key, report.next_certificate_change)
    if report.writes:
        logger.info("Reconciled PaymentService %s/%s with %d writes", namespace, name, report.writes)


def _wake_for_certificates(runtime: Runtime, key: ServiceKey, moment: datetime | None) -> None:
    """One timer per service for the next certificate deadline: Expired shows even if nothing else changes."""
    previous = runtime.wakeups.pop(key, None)
    if previous is not None:
        previous.cancel()
    if moment is None:
        return
    delay = max((moment - datetime.now(UTC)).total_seconds() + 1, 0)  # just past the moment
    wake = functools.partial(runtime.queue.add, key, urgent=False)
    runtime.wakeups[key] = asyncio.get_running_loop().call_later(delay, wake)


def _update_gauges(runtime: Runtime) -> None:
    for kind in CHILD_TYPES:
        managed = [
            obj
            for obj in runtime.cache.list(kind)
            if (obj["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
        ]
        metrics.MANAGED_OBJECTS.labels(kind=kind).set(len(managed))


async def _resync(runtime: Runtime) -> None:
    """A periodic pass for every PaymentService; with nothing changed it writes nothing."""
    while True:
        await asyncio.sleep(runtime.settings.resync_seconds)
        for key in sorted(_service_keys(runtime)):
            runtime.queue.add(key, urgent=False)


async def _refresh_gauges(runtime: Runtime) -> None:
    """Gauges are read from the cache on a timer, not per pass, so passes stay O(1) in the fleet size."""
    while True:
        _update_gauges(runtime)
        await asyncio.sleep(GAUGE_REFRESH_SECONDS)


def _scope(settings: RunSettings) -> str:
    return "all namespaces" if settings.clusterwide else ", ".join(settings.namespaces)
