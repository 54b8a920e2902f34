"""Certificate posture against a real API server and the real cert-manager controller (a CA ClusterIssuer):
payguard proves every workload holds a valid, policy-conforming certificate from public API data only,
under RBAC that cannot read Secrets. Faults come from cert-manager itself: a Certificate tampered with under
driftPolicy Report, an issuer without its CA, a request denied as an approval policy would deny it.
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
from test_reconcile import apply_and_wait_ready, checkout, condition, custom, get_service, wait_condition

from cert_manager import CertManager
from kube import TestCluster
from operator_harness import eventually

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
    ("tampered", "reason", "fragment"),
    [
        (
            {"uris": ["spiffe://cluster.local/ns/other/sa/intruder"]},
            "IdentityMismatch",
            "spiffe://cluster.local/ns/other/sa/intruder",
        ),
        (
            {"privateKey": {"algorithm": "RSA", "size": 2048}},
            "KeyAlgorithmWeak",
            "key is RSA 2048, policy requires ECDSA 256",
        ),
        ({"duration": "720h0m0s"}, "DurationExceedsPolicy", "valid for 720h, policy allows 24h"),
        (
            {"usages": ["digital signature", "server auth"]},
            "ExtensionsNonconforming",
            "certificate lacks extended key usage clientAuth",
        ),
    ],
    ids=["wrong-spiffe-uri", "rsa-2048", "validity-too-long", "no-client-auth"],
)
def test_certificate_tampered_with_under_report_is_reissued_by_cert_manager_and_reported(
    cluster: TestCluster, namespace: str, tampered: dict[str, Any], reason: str, fragment: str
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace, driftPolicy="Report"))

    _patch_certificate(cluster, namespace, "checkout-order-service", {"spec": tampered})

    certificates = wait_condition(cluster, namespace, "CertificatesReady", status="False", reason=reason)
    assert fragment in certificates["message"]
    assert "order-service" in certificates["message"]
    ready = wait_condition(cluster, namespace, "Ready", status="False")
    assert "CertificatesReady" in ready["message"]


def test_cluster_issuer_without_its_ca_secret_is_reported_by_name_with_cert_managers_message(
    cluster: TestCluster, namespace: str, cert_manager: CertManager
) -> None:
    issuer = f"broken-ca-{namespace}"
    cert_manager.create_ca_cluster_issuer(issuer, with_secret=False)
    body = checkout(namespace)
    body["spec"]["certificates"]["issuerRef"]["name"] = issuer
    try:
        cluster.apply(body)

        # cert-manager sets the issuer's Ready=False a moment after it exists without a condition.
        certificates = _wait_certificates(
            cluster, namespace, "IssuerNotReady", f"ClusterIssuer {issuer} is not Ready: "
        )
        assert f"{issuer}-ca" in certificates["message"]  # cert-manager names the missing Secret
        assert condition(get_service(cluster, namespace), "Ready")["status"] == "False"
    finally:
        cert_manager.delete_cluster_issuer(issuer)


def test_denied_request_is_issuance_failed_naming_the_request_and_the_denial(
    cluster: TestCluster, namespace: str, cert_manager: CertManager
) -> None:
    with cert_manager.without_approver():
        cluster.apply(checkout(namespace))

        def one_per_workload() -> list[dict[str, Any]] | None:
            found = cert_manager.requests(namespace)
            return found if len(found) == 4 else None

        requests = eventually(one_per_workload, what="a CertificateRequest per workload")
        for request in requests:
            cert_manager.deny(
                namespace,
                request["metadata"]["name"],
                reason="policy.payguard-tests",
                message="no CertificateRequestPolicy allows this request",
            )

        order_request = next(
            r["metadata"]["name"]
            for r in requests
            if r["metadata"]["annotations"]["cert-manager.io/certificate-name"] == "checkout-order-service"
        )
        denial = (
            f"order-service: IssuanceFailed (CertificateRequest {order_request} was denied by "
            "policy.payguard-tests: no CertificateRequestPolicy allows this request)"
        )
        # The four denials land one by one: wait until every workload says so, not only the first.
        for workload in ("api-gateway", "fraud-engine", "settlement-gateway"):
            _wait_certificates(
                cluster, namespace, "IssuanceFailed", f"{workload}: IssuanceFailed (CertificateRequest "
            )
        certificates = _wait_certificates(cluster, namespace, "IssuanceFailed", denial)
    assert "Pending" not in certificates["message"]
    live = cert_manager.certificate(namespace, "checkout-order-service")["status"]
    assert live.get("failedIssuanceAttempts") == 1  # cert-manager counts the denial as a failure


def test_five_renewals_in_a_row_never_leave_issued_and_each_revision_is_followed(
    cluster: TestCluster, namespace: str, cert_manager: CertManager
) -> None:
    # renewBefore 10 s short of the duration: cert-manager renews every 10 s.
    body = checkout(namespace)
    body["spec"]["certificates"] |= {"duration": "1h", "renewBefore": "59m50s"}
    apply_and_wait_ready(cluster, body)
    watch = client.CustomObjectsApi(cluster.api_client)
    seen: list[tuple[str, str]] = []  # (CertificatesReady reason, order-service serial) at every status write
    serials: list[str] = []
    resource_version = get_service(cluster, namespace)["metadata"]["resourceVersion"]
    deadline = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=120)
    while len(serials) < 6 and datetime.datetime.now(datetime.UTC) < deadline:
        stream = _watch(watch, namespace, resource_version)
        for event in stream:
            service = event["object"]
            resource_version = service["metadata"]["resourceVersion"]
            ready = condition(service, "CertificatesReady")
            order = next(w for w in service["status"]["workloads"] if w["name"] == "order-service")
            seen.append((ready["reason"], order["certificate"].get("serialNumber", "")))
            if not serials or serials[-1] != seen[-1][1]:
                serials.append(seen[-1][1])
            if len(serials) >= 6:
                break

    assert len(serials) >= 6, f"saw only {len(serials) - 1} renewals in 120 s: {seen}"
    assert len(set(serials)) == len(serials), f"a serial came back: {serials}"
    assert {reason for reason, _ in seen} == {"Issued"}, f"CertificatesReady left Issued: {seen}"
    revision = cert_manager.certificate(namespace, "checkout-order-service")["status"]["revision"]
    assert revision >= 6
    owned = [
        r
        for r in cert_manager.requests(namespace)
        if r["metadata"]["annotations"]["cert-manager.io/certificate-name"] == "checkout-order-service"
    ]
    assert len(owned) <= 2  # revisionHistoryLimit 2: the current revision and at most one more


def test_revision_history_limit_of_two_keeps_the_evidence_while_a_renewal_is_stuck(
    cluster: TestCluster, namespace: str, cert_manager: CertManager
) -> None:
    # cert-manager counts the request in flight: with a limit of 1 (its default) the current revision's
    # request is deleted as soon as a renewal starts, and payguard has nothing left to judge.
    apply_and_wait_ready(cluster, checkout(namespace, driftPolicy="Report"))
    _patch_certificate(cluster, namespace, "checkout-api-gateway", {"spec": {"revisionHistoryLimit": 1}})

    with cert_manager.without_approver():
        for workload in ("api-gateway", "order-service"):
            cert_manager.renew(namespace, f"checkout-{workload}")

        certificates = wait_condition(
            cluster, namespace, "CertificatesReady", status="False", reason="RequestMissing"
        )
        assert "Certificate checkout-api-gateway no longer exists" in certificates["message"]
        assert "order-service" not in certificates["message"]
        order = next(
            w for w in get_service(cluster, namespace)["status"]["workloads"] if w["name"] == "order-service"
        )
        assert order["certificate"]["state"] == "Issued"  # limit 2: its revision-1 request is still there


def test_operator_account_cannot_read_secrets(
    cluster: TestCluster, operator_kubeconfig: Path, namespace: str
) -> None:
    with cluster.client_for(operator_kubeconfig) as as_operator, pytest.raises(ApiException) as forbidden:
        client.CoreV1Api(as_operator).list_namespaced_secret(namespace)
    assert forbidden.value.status == 403


def test_no_certificate_key_or_token_leaks_into_logs_events_or_status(
    cluster: TestCluster,
    namespace: str,
    cert_manager: CertManager,
    operator_kubeconfig: Path,
    operator_log: Any,
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    token = yaml.safe_load(operator_kubeconfig.read_text())["users"][0]["user"]["token"]
    canaries = [token]
    pems = cert_manager.issued_pems(namespace)
    assert len(pems) >= 8, "cert-manager wrote no certificate and key per workload: nothing to check"
    for pem in pems:
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


def _wait_certificates(cluster: TestCluster, namespace: str, reason: str, fragment: str) -> dict[str, Any]:
    """CertificatesReady=False with reason, once its message says fragment (several workloads settle)."""

    def probe() -> dict[str, Any] | None:
        found = condition(get_service(cluster, namespace), "CertificatesReady")
        settled = (found.get("status"), found.get("reason")) == ("False", reason)
        return found if settled and fragment in found.get("message", "") else None

    return eventually(probe, what=f"CertificatesReady {reason} saying {fragment!r}")


def _patch_certificate(cluster: TestCluster, namespace: str, name: str, patch: dict[str, Any]) -> None:
    custom(cluster).patch_namespaced_custom_object(
        "cert-manager.io",
        "v1",
        namespace,
        "certificates",
        name,
        patch,
        _content_type="application/merge-patch+json",
    )


def _watch(api: client.CustomObjectsApi, namespace: str, resource_version: str) -> Any:
    from kubernetes import watch  # noqa: PLC0415 - only this test streams

    return watch.Watch().stream(
        api.list_namespaced_custom_object,
        "payguard.dev",
        "v1alpha1",
        namespace,
        "paymentservices",
        resource_version=resource_version,
        timeout_seconds=30,
    )


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
