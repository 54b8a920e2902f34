"""Owns payguard's Prometheus metrics (all prefixed `payguard_`); never labelled with secret material."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
PAYMENT_SERVICES_READY = Gauge("payguard_payment_services", "PaymentServices by Ready status", ["ready"])
