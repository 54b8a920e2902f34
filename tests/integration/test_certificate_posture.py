"""Certificate posture against a real API server: payguard proves every workload holds a valid,
policy-conforming certificate from public API data only, under RBAC that cannot read Secrets.

cert-manager's part is played by tests/fake_cert_manager.py (no cert-manager controller can be built here).
"""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_reconcile import apply_and_wait_ready, checkout, condition, get_service, wait_condition

from fake_cert_manager import FakeCertManager, Faults
from kube import TestCluster

pytestmark = pytest.mark.usefixtures("payguard_operator")


def test_fresh_payment_service_has_every_certificate_issued_and_summarised(
    cluster: TestCluster, namespace: str
) -> None:
    service = apply_and_wait_ready(cluster, checkout(namespace))

    certificates = condition(service, "CertificatesReady")
    assert (certificates["status"], certificates["reason"]) == ("True", "Issued")
    summaries = {w["name"]: w["certificate"] for w in service["status"]["workloads"]}
    assert set(summaries) == {"api-gateway", "order-service", "fraud-engine", "settlement-gateway"}
    order = summaries["order-service"]
    assert order["state"] == "Issued"
    assert (order["keyAlgorithm"], order["keySize"]) == ("ECDSA", 256)
    assert order["secretName"] == "checkout-order-service-tls"
    lifetime = _time(order["notAfter"]) - _time(order["notBefore"])
    assert lifetime == datetime.timedelta(hours=24)
    assert _time(order["renewalTime"]) == _time(order["notAfter"]) - datetime.timedelta(hours=8)
    assert int(order["serialNumber"], 16) > 0


@pytest.mark.parametrize(
    ("faults", "reason", "fragment"),
    [
        (
            Faults(uri="spiffe://cluster.local/ns/other/sa/intruder"),
            "IdentityMismatch",
            "spiffe://cluster.local/ns/other/sa/intruder",
        ),
        (Faults(rsa_bits=2048), "KeyAlgorithmWeak", "key is RSA 2048, policy requires ECDSA 256"),
        (
            Faults(validity=datetime.timedelta(days=30)),
            "DurationExceedsPolicy",
            "valid for 720h, policy allows 24h",
        ),
        (Faults(expired=True), "Expired", "expired at"),
    ],
    ids=["wrong-spiffe-uri", "rsa-2048", "validity-too-long", "expired"],
)
def test_nonconforming_certificate_is_reported_with_its_reason(
    cluster: TestCluster,
    namespace: str,
    cert_manager: FakeCertManager,
    faults: Faults,
    reason: str,
    fragment: str,
) -> None:
    cert_manager.fault(namespace, faults)

    cluster.apply(checkout(namespace))

    certificates = wait_condition(cluster, namespace, "CertificatesReady", status="False", reason=reason)
    assert fragment in certificates["message"]
    ready = wait_condition(cluster, namespace, "Ready", status="False")
    assert "CertificatesReady" in ready["message"]


def test_not_ready_cluster_issuer_is_reported_by_name(
    cluster: TestCluster, namespace: str, cert_manager: FakeCertManager
) -> None:
    issuer = f"broken-ca-{namespace}"
    cert_manager.create_cluster_issuer(issuer, ready=False, message="secret broken-ca-keypair not found")
    cert_manager.fault(namespace, Faults(hold=True))  # a broken issuer signs nothing
    body = checkout(namespace)
    body["spec"]["certificates"]["issuerRef"]["name"] = issuer

    cluster.apply(body)

    certificates = wait_condition(
        cluster, namespace, "CertificatesReady", status="False", reason="IssuerNotReady"
    )
    assert (
        f"ClusterIssuer {issuer} is not Ready: secret broken-ca-keypair not found" in certificates["message"]
    )
    assert condition(get_service(cluster, namespace), "Ready")["status"] == "False"


def test_operator_account_cannot_read_secrets(
    cluster: TestCluster, operator_kubeconfig: Path, namespace: str
) -> None:
    with cluster.client_for(operator_kubeconfig) as as_operator, pytest.raises(ApiException) as forbidden:
        client.CoreV1Api(as_operator).list_namespaced_secret(namespace)
    assert forbidden.value.status == 403


def test_no_certificate_key_or_token_leaks_into_logs_events_or_status(
    cluster: TestCluster,
    namespace: str,
    cert_manager: FakeCertManager,
    operator_kubeconfig: Path,
    operator_log: Any,
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    token = yaml.safe_load(operator_kubeconfig.read_text())["users"][0]["user"]["token"]
    canaries = [token]
    for pem in cert_manager.issued_pems:
        body = "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))
        canaries += [body[:64], body[-64:], base64.b64encode(pem).decode()[:64]]

    events = client.CoreV1Api(cluster.api_client).list_namespaced_event(namespace)
    places = {
        "operator log": "\n".join(operator_log.lines),
        "events": "\n".join(f"{e.reason} {e.message}" for e in events.items),
        "status": json.dumps(get_service(cluster, namespace)["status"]),
    }
    assert operator_log.lines, "the operator logged nothing: the leak check would prove nothing"
    assert events.items, "no Events to check"
    for where, text in places.items():
        for canary in canaries:
            assert canary not in text, f"secret material found in {where}"


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def test_certificate_expiring_on_its_own_is_reported_expired_without_any_other_change(
    cluster: TestCluster, namespace: str, cert_manager: FakeCertManager
) -> None:
    # Valid for seconds: past its renewal time at once, so ExpiringSoon, then Expired by the clock alone.
    cert_manager.fault(namespace, Faults(validity=datetime.timedelta(seconds=10)))

    cluster.apply(checkout(namespace))

    wait_condition(cluster, namespace, "CertificatesReady", status="False", reason="ExpiringSoon")
    expired = wait_condition(
        cluster, namespace, "CertificatesReady", status="False", reason="Expired", timeout=30
    )
    assert "expired at" in expired["message"]
