"""Istio ambient mode on a real API server with the real Istio CRD schemas: the `targetRefs` policies payguard
renders are accepted (and the schema is shown to refuse a wrong one), and a PaymentService in an ambient
namespace gets its ambient children and conditions through the real operator, re-rendered when Istio's
labels change. Pods are API objects as istio-cni leaves them (no kubelet, no ztunnel here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_reconcile import condition, get_child, get_service

from kube import TestCluster
from mesh_pods import AMBIENT_LABELS, ambient_enrolment, namespace_manifest
from operator_harness import eventually
from payguard.cli import main
from payguard.dataplane import dataplanes
from payguard.render import render_children
from payguard.settings import Platform
from payguard.spec import parse_payment_service

pytestmark = pytest.mark.usefixtures("payguard_operator")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WAYPOINT = {"istio.io/use-waypoint": "waypoint"}


def wallet(namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((EXAMPLES / "ambient.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    return body


def cluster_services(namespace: str) -> list[dict[str, Any]]:
    objects = yaml.safe_load_all((EXAMPLES / "ambient" / "cluster.yaml").read_text())
    services = [o for o in objects if o["kind"] == "Service"]
    for service in services:
        service["metadata"]["namespace"] = namespace
    return services


def enrol_ambient(cluster: TestCluster, body: dict[str, Any], *, waypoint: bool) -> None:
    """The namespace enrolled in ambient mode (with a namespace waypoint or not), the example's Services,
    its ServiceAccounts and one captured pod per workload."""
    namespace = body["metadata"]["namespace"]
    labels = {**AMBIENT_LABELS, **(WAYPOINT if waypoint else {})}
    for manifest in (
        namespace_manifest(namespace, labels),
        *cluster_services(namespace),
        *ambient_enrolment(body),
    ):
        cluster.apply(manifest)


def wait_for(cluster: TestCluster, namespace: str, kind: str, status: str, reason: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        body = get_service(cluster, namespace, "wallet")
        found = condition(body, kind)
        current = (body.get("status") or {}).get("observedGeneration") == body["metadata"]["generation"]
        return found if current and (found.get("status"), found.get("reason")) == (status, reason) else None

    return eventually(probe, timeout=60, what=f"{kind}={status} ({reason})")


def test_istio_schema_accepts_every_policy_payguard_renders_for_ambient_as_sent(
    cluster: TestCluster, namespace: str
) -> None:
    body = wallet(namespace)
    body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000001"
    service = parse_payment_service(body)
    planes = dataplanes(
        service,
        namespace=namespace_manifest(namespace, {**AMBIENT_LABELS, **WAYPOINT}),
        pods=[],
        services=cluster_services(namespace),
    )
    children = [
        c
        for c in render_children(service, platform=Platform(), dataplanes=planes)
        if c["kind"] != "Certificate"
    ]
    bound = [c for c in children if "targetRefs" in c["spec"]]
    assert [c["metadata"]["name"] for c in bound] == ["wallet-api-gateway-waypoint", "wallet-ledger-waypoint"]
    for child in children:
        child["metadata"].pop("ownerReferences")  # the owner does not exist: a dry run checks the schema
        accepted = cluster.apply(child, dry_run=True).to_dict()
        # Kept as sent: a structural schema would silently prune a field it does not know.
        assert accepted["spec"] == child["spec"], f"{child['kind']}/{child['metadata']['name']}"

    # The schema is live, not a pass-through: it refuses what istio.io/api's CRD forbids.
    elsewhere = [{**bound[0]["spec"]["targetRefs"][0], "namespace": "elsewhere"}]
    wrong = {**bound[0], "spec": {**bound[0]["spec"], "targetRefs": elsewhere}}
    with pytest.raises(ApiException) as refused:
        cluster.apply(wrong, dry_run=True)
    assert refused.value.status == 422
    assert "cross namespace referencing is not currently supported" in str(refused.value.body)
    both = {**bound[0], "spec": {**bound[0]["spec"], "selector": {"matchLabels": {"app": "x"}}}}
    with pytest.raises(ApiException) as refused_both:
        cluster.apply(both, dry_run=True)
    assert refused_both.value.status == 422
    assert "only one of targetRefs or selector can be set" in str(refused_both.value.body)


def test_payment_service_in_an_ambient_namespace_with_a_waypoint_gets_ambient_children_and_holds(
    cluster: TestCluster, namespace: str
) -> None:
    body = wallet(namespace)
    enrol_ambient(cluster, body, waypoint=True)
    cluster.apply(body)

    wait_for(cluster, namespace, "AuthorizationEnforced", "True", "Applied")
    wait_for(cluster, namespace, "MeshEnrolled", "True", "InMesh")
    wait_for(cluster, namespace, "MTLSStrict", "True", "Strict")
    wait_for(cluster, namespace, "NetworkIsolated", "True", "Applied")
    wait_for(cluster, namespace, "LeastPrivilege", "True", "LeastPrivilege")
    wait_for(cluster, namespace, "Ready", "True", "Reconciled")  # certificates issued by cert-manager too
    waypoint = get_child(cluster, "AuthorizationPolicy", namespace, "wallet-ledger-waypoint")
    assert waypoint is not None
    assert waypoint["spec"]["targetRefs"] == [{"group": "", "kind": "Service", "name": "ledger"}]
    assert "selector" not in waypoint["spec"]
    ztunnel = get_child(cluster, "AuthorizationPolicy", namespace, "wallet-ledger")
    assert ztunnel is not None
    principals = [r["from"][0]["source"]["principals"] for r in ztunnel["spec"]["rules"]]
    assert principals == [
        ["cluster.local/ns/monitoring/sa/prometheus"],
        [f"cluster.local/ns/{namespace}/sa/waypoint"],
    ]
    network = get_child(cluster, "NetworkPolicy", namespace, "wallet-ledger")
    assert network is not None
    ingress = network["spec"]["ingress"]
    probes = [rule for rule in ingress if rule["from"] == [{"ipBlock": {"cidr": "169.254.7.127/32"}}]]
    assert probes == [
        {
            "from": probes[0]["from"],
            "ports": [{"port": 9090, "protocol": "TCP"}, {"port": 9443, "protocol": "TCP"}],
        }
    ]
    # every other rule (the two callers, the waypoint) admits HBONE
    assert all({"port": 15008, "protocol": "TCP"} in rule["ports"] for rule in ingress if rule not in probes)
    assert len(ingress) == 4
    assert get_child(cluster, "AuthorizationPolicy", namespace, "wallet-token-vault-waypoint") is None


def test_payguard_diff_reads_ambient_mode_from_the_cluster_as_the_operator_does(
    cluster: TestCluster, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = wallet(namespace)
    enrol_ambient(cluster, body, waypoint=True)
    cluster.apply(body)
    wait_for(cluster, namespace, "AuthorizationEnforced", "True", "Applied")
    manifest = tmp_path / "wallet.yaml"
    manifest.write_text(yaml.safe_dump(body))
    # The live children are the ambient ones, so an empty diff means diff rendered them for ambient too.
    assert get_child(cluster, "AuthorizationPolicy", namespace, "wallet-ledger-waypoint") is not None

    assert main(["diff", "-f", str(manifest), "--kubeconfig", str(cluster.kubeconfig)]) == 0
    assert capsys.readouterr().out == ""


def test_l7_rules_without_a_waypoint_are_reported_until_a_waypoint_label_re_renders_them(
    cluster: TestCluster, namespace: str
) -> None:
    body = wallet(namespace)
    enrol_ambient(cluster, body, waypoint=False)
    cluster.apply(body)

    found = wait_for(cluster, namespace, "AuthorizationEnforced", "False", "WaypointMissing")
    assert "ledger: runs in ambient mode and no waypoint serves a Service of it" in found["message"]
    assert condition(get_service(cluster, namespace, "wallet"), "Ready")["status"] == "False"
    assert get_child(cluster, "AuthorizationPolicy", namespace, "wallet-ledger-waypoint") is None

    client.CoreV1Api(cluster.api_client).patch_namespace(namespace, {"metadata": {"labels": WAYPOINT}})

    wait_for(cluster, namespace, "AuthorizationEnforced", "True", "Applied")
    waypoint = eventually(
        lambda: get_child(cluster, "AuthorizationPolicy", namespace, "wallet-ledger-waypoint"),
        what="the waypoint policy after the namespace label",
    )
    assert waypoint["spec"]["targetRefs"] == [{"group": "", "kind": "Service", "name": "ledger"}]
