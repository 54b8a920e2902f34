"""What the real cert-manager controller cannot produce on demand: a certificate that is already expired,
and one whose posture changes by the clock alone. tests/fake_cert_manager.py plays cert-manager's part for
these, with the real controller stopped meanwhile (both would otherwise issue the same Certificates)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from test_reconcile import checkout, wait_condition

from cert_manager import CertManager
from fake_cert_manager import FakeCertManager, Faults
from kube import TestCluster

pytestmark = pytest.mark.usefixtures("payguard_operator")


@pytest.fixture
def stand_in(cluster: TestCluster, cert_manager: CertManager) -> Iterator[FakeCertManager]:
    with cert_manager.stopped():
        fake = FakeCertManager(cluster.api_client)
        fake.start()
        try:
            yield fake
        finally:
            fake.stop()
    assert not fake.errors, fake.errors


def test_an_already_expired_certificate_is_reported_expired(
    cluster: TestCluster, namespace: str, stand_in: FakeCertManager
) -> None:
    stand_in.fault(namespace, Faults(expired=True))

    cluster.apply(checkout(namespace))

    expired = wait_condition(cluster, namespace, "CertificatesReady", status="False", reason="Expired")
    assert "expired at" in expired["message"]
    assert wait_condition(cluster, namespace, "Ready", status="False")


def test_certificate_expiring_on_its_own_is_reported_expired_without_any_other_change(
    cluster: TestCluster, namespace: str, stand_in: FakeCertManager
) -> None:
    # Valid for seconds: past its renewal time at once, so ExpiringSoon, then Expired by the clock alone.
    stand_in.fault(namespace, Faults(validity=datetime.timedelta(seconds=10)))

    cluster.apply(checkout(namespace))

    wait_condition(cluster, namespace, "CertificatesReady", status="False", reason="ExpiringSoon")
    expired = wait_condition(
        cluster, namespace, "CertificatesReady", status="False", reason="Expired", timeout=30
    )
    assert "expired at" in expired["message"]
