"""Owns payguard's Prometheus metrics (all prefixed `payguard_`); never labelled with secret material."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

from payguard.kinds import CHILD_TYPES
from payguard.posture.certificates import SEVERITY, CertificatePosture

RECONCILES = Counter("payguard_reconciles", "Reconcile passes, by result", ["result"])
RECONCILE_DURATION = Histogram(
    "payguard_reconcile_duration_seconds",
    "Duration of one reconcile pass",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WRITES = Counter("payguard_api_writes", "Write requests payguard sent, by verb and kind", ["verb", "kind"])
DRIFT_DETECTED = Counter("payguard_drift_detected", "Managed objects found drifted, by kind", ["kind"])
DRIFT_REVERTED = Counter("payguard_drift_reverted", "Drifted managed objects repaired, by kind", ["kind"])
DRIFT_REPEATED = Counter(
    "payguard_drift_repeated",
    "Drifts of a managed object already in a fight (3 or more drifts within the fight window), by kind",
    ["kind"],
)
for _kind in CHILD_TYPES:  # served as 0 from the start, so the alert's increase() sees the first fight
    DRIFT_REPEATED.labels(kind=_kind)
MANAGED_OBJECTS = Gauge("payguard_managed_objects", "Objects payguard manages, by kind", ["kind"])
CERTIFICATE_EXPIRY = Gauge(
    "payguard_certificate_expiry_timestamp_seconds",
    "notAfter of each workload certificate, as a Unix time",
    ["namespace", "payment_service", "workload"],
)
CERTIFICATE_RENEWAL = Gauge(
    "payguard_certificate_renewal_timestamp_seconds",
    "When cert-manager should renew each workload certificate, as a Unix time",
    ["namespace", "payment_service", "workload"],
)
CERTIFICATES = Gauge(
    "payguard_certificates", "Workload certificates by posture (CertificatesReady reasons)", ["posture"]
)

ACTIVE_EXCEPTIONS = Gauge(
    "payguard_active_exceptions",
    "Break-glass PaymentServiceExceptions in force, per PaymentService (for alerts)",
    ["namespace", "payment_service"],
)
CONDITIONS = Gauge(
    "payguard_condition",
    "1 when a PaymentService condition is True, else 0 (for alerts)",
    ["namespace", "payment_service", "type"],
)

_lock = threading.Lock()
# (namespace, service) -> workload -> posture, and the fleet's count per posture, kept as they change:
# a pass must not cost more as the fleet grows.
_postures: dict[tuple[str, str], dict[str, str]] = {}
_counts: collections.Counter[str] = collections.Counter()


def record_certificates(*, namespace: str, service: str, postures: Iterable[CertificatePosture]) -> None:
    """Per-workload timestamps, and the fleet-wide count of certificates by posture."""
    with _lock:
        _counts.subtract(_postures.pop((namespace, service), {}).values())
        by_workload = _postures[(namespace, service)] = {}
        for posture in postures:
            labels = (namespace, service, posture.workload)
            by_workload[posture.workload] = posture.reason
            if posture.issued is not None:
                CERTIFICATE_EXPIRY.labels(*labels).set(posture.issued.not_after.timestamp())
            if posture.renewal_time is not None:
                CERTIFICATE_RENEWAL.labels(*labels).set(posture.renewal_time.timestamp())
        _counts.update(by_workload.values())
        _refresh_certificate_counts()


def serve(*, port: int, address: str, ready: Callable[[], str | None]) -> Callable[[], None]:
    """Serves /metrics, /healthz (the process answers) and /readyz (200, or 503 with why `ready` says
    it is not) in a thread; returns what stops it and frees the port."""
    metrics_app = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/readyz":
            problem = ready()
            status = "200 OK" if problem is None else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain")])
            return [f"{problem or 'ok'}\n".encode()]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    server = make_server(address, port, app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the log."""


def record_conditions(*, namespace: str, service: str, conditions: Iterable[tuple[str, bool]]) -> None:
    for condition_type, holds in conditions:
        CONDITIONS.labels(namespace, service, condition_type).set(1 if holds else 0)


def record_exceptions(*, namespace: str, service: str, active: int) -> None:
    ACTIVE_EXCEPTIONS.labels(namespace, service).set(active)


def forget_service(*, namespace: str, service: str) -> None:
    """Drops the series of a deleted PaymentService, so dashboards do not show ghosts."""
    with contextlib.suppress(KeyError):
        ACTIVE_EXCEPTIONS.remove(namespace, service)
    for labels in list(CONDITIONS._metrics):  # prometheus_client has no API to list label sets
        if labels[:2] == (namespace, service):
            CONDITIONS.remove(*labels)
    with _lock:
        by_workload = _postures.pop((namespace, service), {})
        _counts.subtract(by_workload.values())
        for workload in by_workload:
            for gauge in (CERTIFICATE_EXPIRY, CERTIFICATE_RENEWAL):
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, service, workload)
        _refresh_certificate_counts()


def _refresh_certificate_counts() -> None:
    for posture in SEVERITY:
        CERTIFICATES.labels(posture=posture).set(_counts[posture])


SHARD_OWNED = Gauge(
    "payguard_shard_owned", "1 while this replica holds the Lease of the shard, else 0", ["shard"]
)
LEASE_TRANSITIONS = Counter(
    "payguard_lease_transitions", "Shard Leases this replica acquired, lost or released", ["shard", "event"]
)
FENCED_WRITES = Counter("payguard_fenced_writes", "Writes the fence refused: the shard's Lease was not held")
CACHED_OBJECTS = Gauge(
    "payguard_cached_objects",
    "Objects held in this replica's cache, by kind (sharded: only its shards' namespaces, the mesh root's "
    "and cluster-scoped ones)",
    ["kind"],
)
CACHE_LISTS = Counter(
    "payguard_cache_lists",
    "Full lists the informers made (start, watch gaps, shard fills, a resync check that found a miss)",
    ["kind"],
)
CACHE_AUDITS = Counter(
    "payguard_cache_audits",
    "Resync checks of the cache against a list: consistent, missed (the watch missed an object: relisted), "
    "failed (the list failed: relisted) or skipped (not watching: being listed, or not served)",
    ["kind", "outcome"],
)
