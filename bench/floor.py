"""Owns the floor: a bare client doing the API work payguard must do, and nothing else.

For each PaymentService it server-side applies exactly the child manifests payguard renders (same
renderer, the object's real uid, CustomObjectsApi, force) and patches status once, with as many
passes at once as payguard has workers. It reads nothing, judges nothing and posts no Events: the time
it takes is what the API server needs for the writes alone, so payguard / floor is payguard's overhead.
It runs as its own ServiceAccount bound to payguard's ClusterRole.
"""

from __future__ import annotations

import datetime
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from bench.workload import Applied
from payguard.kinds import CHILD_TYPES, PAYMENT_SERVICES
from payguard.render import render_children
from payguard.settings import Platform
from payguard.spec import parse_payment_service

FLOOR_FIELD_MANAGER = "payguard-floor"
STATUS_CONDITIONS = (
    "Ready",
    "MTLSStrict",
    "AuthorizationEnforced",
    "NetworkIsolated",
    "InSync",
    "LeastPrivilege",
    "CertificatesReady",
)


def floor_status(body: dict[str, Any]) -> dict[str, Any]:
    """A status of the shape and size payguard writes: observedGeneration, seven conditions, workloads."""
    generation = body["metadata"].get("generation", 1)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [
        {
            "type": kind,
            "status": "True",
            "reason": "Floor",
            "message": "written by the benchmark's bare client",
            "observedGeneration": generation,
            "lastTransitionTime": now,
        }
        for kind in STATUS_CONDITIONS
    ]
    workloads = [{"name": w["name"]} for w in body["spec"]["workloads"]]
    return {
        "observedGeneration": generation,
        "conditions": conditions,
        "workloadCount": len(workloads),
        "workloads": workloads,
    }


@dataclass
class FloorClient:
    """The bare client: one thread per payguard worker, one pass (16 applies + 1 status patch) per service."""

    api_client: client.ApiClient
    workers: int
    errors: list[str] = field(default_factory=list)
    _pool: ThreadPoolExecutor = field(init=False)
    _futures: list[Future[None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._custom = client.CustomObjectsApi(self.api_client)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="floor")

    def submit(self, applied: Applied) -> None:
        """Queues one PaymentService the moment its apply returned (as a watch event would wake payguard)."""
        future = self._pool.submit(self._write_service, applied.body)
        with self._lock:
            self._futures.append(future)

    def finish(self) -> None:
        with self._lock:
            futures = list(self._futures)
            self._futures.clear()
        for future in futures:
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _write_service(self, body: dict[str, Any]) -> None:
        service = parse_payment_service(body)
        for manifest in render_children(service, platform=Platform()):
            resource = CHILD_TYPES[manifest["kind"]]
            self._custom.patch_namespaced_custom_object(
                resource.group,
                resource.version,
                service.namespace,
                resource.plural,
                manifest["metadata"]["name"],
                manifest,
                field_manager=FLOOR_FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        self._custom.patch_namespaced_custom_object_status(
            PAYMENT_SERVICES.group,
            PAYMENT_SERVICES.version,
            service.namespace,
            PAYMENT_SERVICES.plural,
            service.name,
            {"status": floor_status(body)},
            _content_type="application/merge-patch+json",
        )
