"""Owns what the benchmark sees happen: watches PaymentServices and the children payguard manages, and
records, per PaymentService, when its children were all present, when its status was observed at its
generation, and when it turned Ready=True; per child, its latest version, for drift repair.

The benchmark waits on these records; it never polls the API in a loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from payguard.kinds import (
    CHILD_TYPES,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PAYMENT_SERVICES,
    SERVICE_LABEL,
    ResourceType,
)

logger = logging.getLogger(__name__)
ServiceKey = tuple[str, str]  # (namespace, name)
ChildKey = tuple[str, str, str]  # (kind, namespace, name)
CHILDREN_PER_WORKLOAD = len(CHILD_TYPES)
WATCH_SECONDS = 240


@dataclass
class ServiceTimes:
    """First moments (time.time()) a PaymentService reached each milestone."""

    children_present: float | None = None
    status_observed: float | None = None  # status.observedGeneration == metadata.generation
    own_work_done: float | None = None  # both of the above: payguard's (or the floor's) own work
    ready: float | None = None  # Ready=True and every child present


@dataclass(frozen=True)
class ChildVersion:
    event: str
    uid: str
    resource_version: int
    spec: Any
    seen_at: float


@dataclass
class ClusterObserver:
    """List-then-watch of PaymentServices and managed children, in background threads."""

    api_client: client.ApiClient
    children_per_service: int
    times: dict[ServiceKey, ServiceTimes] = field(default_factory=dict)
    children: dict[ChildKey, ChildVersion] = field(default_factory=dict)
    issued: dict[ChildKey, float] = field(default_factory=dict)  # Certificates: first seen signed
    _present: dict[ServiceKey, set[ChildKey]] = field(default_factory=dict)
    _status_ok: dict[ServiceKey, bool] = field(default_factory=dict)
    _ready_now: dict[ServiceKey, bool] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)
    _synced: set[str] = field(default_factory=set)

    def start(self) -> None:
        kinds = [PAYMENT_SERVICES, *CHILD_TYPES.values()]
        for resource in kinds:
            thread = threading.Thread(
                target=self._watch_forever, args=(resource,), name=f"watch-{resource.plural}", daemon=True
            )
            thread.start()
        self.wait_for(lambda: len(self._synced) == len(kinds), timeout=60, what="initial lists")

    def stop(self) -> None:
        self._stop.set()

    # -- waiting

    def wait_for(self, predicate: Callable[[], bool], *, timeout: float, what: str) -> bool:
        """Blocks until predicate holds (checked on every event); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.warning("timed out after %.0fs waiting for %s", timeout, what)
                    return False
                self._changed.wait(min(remaining, 1.0))
        return True

    def all_reached(self, keys: Iterable[ServiceKey], milestone: str) -> bool:
        return all(getattr(self.times.get(key), milestone, None) is not None for key in keys)

    def count_reached(self, keys: Iterable[ServiceKey], milestone: str) -> int:
        return sum(1 for key in keys if getattr(self.times.get(key), milestone, None) is not None)

    def forget(self, keys: Iterable[ServiceKey]) -> None:
        with self._changed:
            for key in keys:
                self.times.pop(key, None)

    def child(self, key: ChildKey) -> ChildVersion | None:
        with self._changed:
            return self.children.get(key)

    # -- watching

    def _watch_forever(self, resource: ResourceType) -> None:
        custom = client.CustomObjectsApi(self.api_client)
        selector = None if resource is PAYMENT_SERVICES else f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
        while not self._stop.is_set():
            try:
                listed = custom.list_cluster_custom_object(
                    resource.group, resource.version, resource.plural, label_selector=selector
                )
                for item in listed["items"]:
                    self._record(resource.kind, "ADDED", item)
                with self._changed:
                    self._synced.add(resource.kind)
                    self._changed.notify_all()
                self._stream(custom, resource, selector, listed["metadata"]["resourceVersion"])
            except ApiException as error:
                if self._stop.is_set():
                    return
                if error.status != 410:  # 410: our resourceVersion is too old; list again
                    logger.warning("watch of %s failed: %s", resource.plural, error.reason)
                    time.sleep(0.5)
            except Exception as error:  # a dropped connection: list again
                if self._stop.is_set():
                    return
                logger.warning("watch of %s dropped: %s", resource.plural, error)
                time.sleep(0.5)

    def _stream(
        self, custom: client.CustomObjectsApi, resource: ResourceType, selector: str | None, version: str
    ) -> None:
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                custom.list_cluster_custom_object,
                resource.group,
                resource.version,
                resource.plural,
                label_selector=selector,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
            )
            for event in stream:
                body = event["object"]
                version = body["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":
                    self._record(resource.kind, event["type"], body)

    def _record(self, kind: str, event: str, body: dict[str, Any]) -> None:
        now = time.time()
        with self._changed:
            if kind == PAYMENT_SERVICES.kind:
                self._record_service(event, body, now)
            else:
                self._record_child(kind, event, body, now)
            self._changed.notify_all()

    def _record_child(self, kind: str, event: str, body: dict[str, Any], now: float) -> None:
        metadata = body["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        self.children[(kind, namespace, name)] = ChildVersion(
            event=event,
            uid=metadata["uid"],
            resource_version=int(metadata["resourceVersion"]),
            spec=body.get("spec"),
            seen_at=now,
        )
        if kind == "Certificate" and (body.get("status") or {}).get("revision"):
            self.issued.setdefault((kind, namespace, name), now)
        service = (namespace, (metadata.get("labels") or {}).get(SERVICE_LABEL, ""))
        present = self._present.setdefault(service, set())
        if event == "DELETED":
            present.discard((kind, namespace, name))
        else:
            present.add((kind, namespace, name))
        self._update_milestones(service, now)

    def _record_service(self, event: str, body: dict[str, Any], now: float) -> None:
        metadata = body["metadata"]
        service = (metadata["namespace"], metadata["name"])
        if event == "DELETED":
            self._status_ok.pop(service, None)
            self._ready_now.pop(service, None)
            return
        status = body.get("status") or {}
        self._status_ok[service] = status.get("observedGeneration") == metadata.get("generation")
        self._ready_now[service] = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        self._update_milestones(service, now)

    def _update_milestones(self, service: ServiceKey, now: float) -> None:
        times = self.times.setdefault(service, ServiceTimes())
        complete = len(self._present.get(service, ())) >= self.children_per_service
        if complete and times.children_present is None:
            times.children_present = now
        if self._status_ok.get(service) and times.status_observed is None:
            times.status_observed = now
        if complete and self._status_ok.get(service) and times.own_work_done is None:
            times.own_work_done = now
        if complete and self._ready_now.get(service) and times.ready is None:
            times.ready = now
