"""Certificate metrics: per-workload timestamps and the fleet-wide count by posture, dropped on deletion."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from payguard import metrics
from payguard.posture.certificates import CertificatePosture, CertificateReason, IssuedCertificate

NOT_AFTER = datetime(2030, 1, 2, tzinfo=UTC)
RENEWAL = datetime(2030, 1, 1, 16, tzinfo=UTC)


def posture(workload: str, reason: str) -> CertificatePosture:
    issued = IssuedCertificate(
        ("spiffe://x",), "ECDSA", 256, datetime(2030, 1, 1, tzinfo=UTC), NOT_AFTER, "ab"
    )
    return CertificatePosture(workload, f"svc-{workload}", f"svc-{workload}-tls", reason, "", issued, RENEWAL)


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_recorded_certificates_expose_timestamps_and_counts_by_posture() -> None:
    before = sample("payguard_certificates", posture="Expired") or 0
    metrics.record_certificates(
        namespace="metrics-ns",
        service="svc",
        postures=[posture("a", CertificateReason.ISSUED), posture("b", CertificateReason.EXPIRED)],
    )
    labels = {"namespace": "metrics-ns", "payment_service": "svc", "workload": "a"}
    assert sample("payguard_certificate_expiry_timestamp_seconds", **labels) == NOT_AFTER.timestamp()
    assert sample("payguard_certificate_renewal_timestamp_seconds", **labels) == RENEWAL.timestamp()
    assert sample("payguard_certificates", posture="Expired") == before + 1


def test_forgetting_a_service_drops_its_series_and_counts() -> None:
    metrics.record_certificates(
        namespace="gone-ns", service="svc", postures=[posture("a", CertificateReason.EXPIRED)]
    )
    counted = sample("payguard_certificates", posture="Expired") or 0

    metrics.forget_service(namespace="gone-ns", service="svc")

    labels = {"namespace": "gone-ns", "payment_service": "svc", "workload": "a"}
    assert sample("payguard_certificate_expiry_timestamp_seconds", **labels) is None
    assert sample("payguard_certificates", posture="Expired") == counted - 1
