"""`payguard evidence` against a real API server and the session operator: the bundle's checksums verify,
it records the live objects, certificates and the drift Event, and it carries no Secret data (canaries),
run under an auditor's RBAC that cannot read Secrets at all."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_reconcile import apply_and_wait_ready, checkout, patch_child, wait_condition

from cert_manager import CertManager
from kube import TestCluster
from operator_harness import eventually
from payguard.cli import main
from payguard.tools.pci import canonical_sha256

pytestmark = pytest.mark.usefixtures("payguard_operator")

CANARY = "payguard-evidence-canary-0f9e8d7c"
# What an auditor's account needs: read the PaymentServices, their children, the signed requests, Events.
AUDITOR_RULES = [
    {"apiGroups": ["payguard.dev"], "resources": ["paymentservices"], "verbs": ["get", "list"]},
    {
        "apiGroups": ["security.istio.io"],
        "resources": ["peerauthentications", "authorizationpolicies"],
        "verbs": ["list"],
    },
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["list"]},
    {
        "apiGroups": ["cert-manager.io"],
        "resources": ["certificates", "certificaterequests"],
        "verbs": ["list"],
    },
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["list"]},
]


def auditor_kubeconfig(cluster: TestCluster, namespace: str, directory: Path) -> Path:
    """A ServiceAccount with read access to exactly AUDITOR_RULES in the namespace: no Secrets."""
    core, rbac = client.CoreV1Api(cluster.api_client), client.RbacAuthorizationV1Api(cluster.api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "auditor"}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "auditor"}, "rules": AUDITOR_RULES})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "auditor"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "auditor"},
            "subjects": [{"kind": "ServiceAccount", "name": "auditor", "namespace": namespace}],
        },
    )
    return cluster.kubeconfig_for_service_account(
        namespace=namespace, service_account="auditor", directory=directory
    )


def drift_reverted_event(cluster: TestCluster, namespace: str) -> Any:
    # core/v1: the events.k8s.io model cannot read cert-manager's Events (eventTime null).
    events = client.CoreV1Api(cluster.api_client).list_namespaced_event(namespace).items
    return next((e for e in events if e.reason == "DriftReverted"), None)


def test_evidence_bundle_verifies_records_the_live_controls_and_carries_no_secret_data(
    cluster: TestCluster,
    namespace: str,
    tmp_path: Path,
    cert_manager: CertManager,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = apply_and_wait_ready(cluster, checkout(namespace))
    # A repaired edit, so the bundle has drift history to show.
    patch_child(cluster, "NetworkPolicy", namespace, "checkout-fraud-engine", {"spec": {"ingress": [{}]}})
    eventually(lambda: drift_reverted_event(cluster, namespace), what="a DriftReverted Event")
    wait_condition(cluster, namespace, "Ready", status="True")
    client.CoreV1Api(cluster.api_client).create_namespaced_secret(
        namespace,
        {"metadata": {"name": "checkout-canary"}, "stringData": {"tls.key": CANARY, "token": CANARY}},
    )
    kubeconfig = auditor_kubeconfig(cluster, namespace, tmp_path)
    with cluster.client_for(kubeconfig) as as_auditor, pytest.raises(ApiException) as forbidden:
        client.CoreV1Api(as_auditor).list_namespaced_secret(namespace)
    assert forbidden.value.status == 403  # the tool could not read a Secret even if it tried

    out = tmp_path / "bundle"
    argv = ["evidence", "--live", "-n", namespace, "-o", str(out), "--kubeconfig", str(kubeconfig)]
    assert main(argv) == 0, capsys.readouterr().err
    bundle = out / namespace / "checkout"
    assert capsys.readouterr().out.strip() == str(bundle)

    # SHA256SUMS verifies, by hashlib and by sha256sum -c where it exists.
    sums = (bundle / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in sums) == ["evidence.json", "report.html"]
    for line in sums:
        digest, name = line.split("  ")
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=bundle, check=True)

    evidence = json.loads((bundle / "evidence.json").read_text())
    live = get_live(cluster, "networking.k8s.io/v1", "NetworkPolicy", namespace, "checkout-fraud-engine")
    recorded = {(o["kind"], o["name"]): o for o in evidence["objects"]}
    assert len(recorded) == 4 * 4  # four children for each of checkout's four workloads
    assert recorded["NetworkPolicy", "checkout-fraud-engine"]["specSha256"] == canonical_sha256(live["spec"])
    assert all(r["met"] for r in evidence["requirements"]), evidence["requirements"]
    serials = {c["name"]: c["serialNumber"] for c in _status_certificates(cluster, namespace)}
    assert {c["name"]: c["issued"]["serialNumber"] for c in evidence["certificates"]} == serials
    # Signed by the real cert-manager from the CA of ClusterIssuer payments-ca (hack/localcertmanager.py).
    assert all("payguard local CA payments-ca" in c["issued"]["issuer"] for c in evidence["certificates"])
    assert "DriftReverted" in {e["reason"] for e in evidence["events"]}
    assert evidence["paymentService"]["uid"] == service["metadata"]["uid"]

    # Canaries: the Secret's values, every key and certificate body the issuer wrote.
    canaries = [CANARY, base64.b64encode(CANARY.encode()).decode()]
    for pem in cert_manager.issued_pems(namespace):
        body = "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))
        canaries += [body[:64], body[-64:], base64.b64encode(pem).decode()[:64]]
    assert len(canaries) > 2, "nothing issued: the canary check would prove nothing"
    for path in bundle.iterdir():
        text = path.read_text()
        for canary in canaries:
            assert canary not in text, f"secret material in {path.name}"


def get_live(cluster: TestCluster, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = cluster.resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
    return found


def _status_certificates(cluster: TestCluster, namespace: str) -> list[dict[str, Any]]:
    body = client.CustomObjectsApi(cluster.api_client).get_namespaced_custom_object(
        "payguard.dev", "v1alpha1", namespace, "paymentservices", "checkout"
    )
    return [w["certificate"] for w in body["status"]["workloads"]]


def test_evidence_of_a_namespace_without_payment_services_says_so(
    cluster: TestCluster, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evidence", "--live", "-n", namespace, "-o", str(tmp_path / "empty")]
    assert main([*argv, "--kubeconfig", str(cluster.kubeconfig)]) == 1
    assert f"no valid PaymentService in namespace {namespace}" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()
