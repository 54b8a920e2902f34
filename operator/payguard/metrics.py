"""Owns payguard's Prometheus metrics (all prefixed `payguard_`); never labelled with secret material."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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

CONDITIONS = Gauge(
    "payguard_condition",
    "1 when a PaymentService condition is True, else 0 (for alerts)",
    ["namespace", "payment_service", "type"],
)

_lock = threading.Lock()
_postures: dict[tuple[str, str, str], str] = {}


def record_certificates(*, namespace: str, service: str, postures: Iterable[CertificatePosture]) -> None:
    """Per-workload timestamps, and the fleet-wide count of certificates by posture."""
    with _lock:
        for key in [k for k in _postures if k[:2] == (namespace, service)]:
            del _postures[key]
        for posture in postures:
            labels = (namespace, service, posture.workload)
            _postures[labels] = posture.reason
            if posture.issued is not None:
                CERTIFICATE_EXPIRY.labels(*labels).set(posture.issued.not_after.timestamp())
            if posture.renewal_time is not None:
                CERTIFICATE_RENEWAL.labels(*labels).set(posture.renewal_time.timestamp())
        _refresh_certificate_counts()


def serve(*, port: int, address: str) -> Callable[[], None]:
    """Serves /metrics in a thread; returns what stops it and frees the port."""
    server, _thread = start_http_server(port, addr=address)

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


def record_conditions(*, namespace: str, service: str, conditions: Iterable[tuple[str, bool]]) -> None:
    for condition_type, holds in conditions:
        CONDITIONS.labels(namespace, service, condition_type).set(1 if holds else 0)


def forget_service(*, namespace: str, service: str) -> None:
    """Drops the series of a deleted PaymentService, so dashboards do not show ghosts."""
    for labels in list(CONDITIONS._metrics):  # prometheus_client has no API to list label sets
        if labels[:2] == (namespace, service):
            CONDITIONS.remove(*labels)
    with _lock:
        for labels in [k for k in _postures if k[:2] == (namespace, service)]:
            del _postures[labels]
            for gauge in (CERTIFICATE_EXPIRY, CERTIFICATE_RENEWAL):
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)
        _refresh_certificate_counts()


def _refresh_certificate_counts() -> None:
    for posture in SEVERITY:
        CERTIFICATES.labels(posture=posture).set(sum(1 for reason in _postures.values() if reason == posture))
