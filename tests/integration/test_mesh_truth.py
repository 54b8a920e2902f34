"""Mesh and identity truth on a real API server: Pods, ServiceAccounts, Services, Namespaces and Istio's
mesh config as API objects (no kubelet, no injector: pods are created as the injector would leave them).
payguard must not say True unless the pods are in the mesh, under the identity the policies trust."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from test_reconcile import KINDS, checkout, condition, get_child, get_service, wait_condition

from kube import TestCluster
from mesh_pods import namespace_manifest, pod_manifest, service_account_manifest, workload_pods
from operator_harness import SEPARATE_LABEL, SEPARATE_SELECTOR, OperatorProcess, eventually

pytestmark = pytest.mark.usefixtures("payguard_operator")

MESH_ROOT = "istio-system"


def core(cluster: TestCluster) -> client.CoreV1Api:
    return client.CoreV1Api(cluster.api_client)


def label_namespace(cluster: TestCluster, namespace: str, labels: dict[str, str | None]) -> None:
    core(cluster).patch_namespace(namespace, {"metadata": {"labels": labels}})


def create_accounts(cluster: TestCluster, body: dict[str, Any]) -> None:
    namespace = body["metadata"]["namespace"]
    for name in sorted({w["serviceAccount"] for w in body["spec"]["workloads"]}):
        cluster.apply(service_account_manifest(namespace, name))


def replace_pod(cluster: TestCluster, manifest: dict[str, Any]) -> None:
    """A rollout restart in miniature: the old pod goes (at once: it was never scheduled), a new one comes."""
    metadata = manifest["metadata"]
    try:
        core(cluster).delete_namespaced_pod(metadata["name"], metadata["namespace"], grace_period_seconds=0)
    except client.exceptions.ApiException as error:
        assert error.status == 404
    eventually(lambda: not pod_exists(cluster, metadata["namespace"], metadata["name"]), what="pod gone")
    cluster.apply(manifest)


def pod_exists(cluster: TestCluster, namespace: str, name: str) -> bool:
    try:
        core(cluster).read_namespaced_pod(name, namespace)
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def children_versions(cluster: TestCluster, namespace: str) -> dict[tuple[str, str], str]:
    versions = {}
    for kind in KINDS:
        for workload in ("api-gateway", "order-service", "fraud-engine", "settlement-gateway"):
            child = get_child(cluster, kind, namespace, f"checkout-{workload}")
            assert child is not None
            versions[(kind, workload)] = child["metadata"]["resourceVersion"]
    return versions


def mesh_summary(cluster: TestCluster, namespace: str) -> dict[str, Any]:
    return {w["name"]: w.get("mesh") for w in get_service(cluster, namespace)["status"]["workloads"]}


# --- pods outside the mesh ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace_labels", "pod_annotations", "why"),
    [
        ({}, {}, "namespace not labelled for injection"),
        ({"istio-injection": "disabled"}, {}, "namespace has istio-injection=disabled"),
        (
            {"istio-injection": "enabled"},
            {"sidecar.istio.io/inject": "false"},
            "sidecar injection disabled on the pod",
        ),
        ({"istio-injection": "enabled"}, {}, "no istio-proxy container"),
    ],
    ids=["namespace-not-labelled", "injection-disabled", "pod-opted-out", "created-before-injection"],
)
def test_pods_without_a_sidecar_are_named_and_nothing_mesh_is_true_until_injected(
    cluster: TestCluster,
    namespace: str,
    namespace_labels: dict[str, str],
    pod_annotations: dict[str, str],
    why: str,
) -> None:
    body = checkout(namespace)
    label_namespace(cluster, namespace, dict(namespace_labels))
    create_accounts(cluster, body)
    plain = workload_pods(body, sidecar=False)
    for pod in plain:
        pod["metadata"]["annotations"].update(pod_annotations)
        cluster.apply(pod)
    cluster.apply(body)

    for kind in ("MTLSStrict", "AuthorizationEnforced", "MeshEnrolled"):
        found = wait_condition(cluster, namespace, kind, status="False", reason="PodsOutsideMesh")
        assert f"checkout-api-gateway-0 ({why}" in found["message"], found["message"]
    assert condition(get_service(cluster, namespace), "Ready")["status"] == "False"
    assert mesh_summary(cluster, namespace)["order-service"]["inMesh"] == 0

    # The fix as a platform team makes it: label the namespace, restart the pods; the injector adds the proxy.
    label_namespace(cluster, namespace, {"istio-injection": "enabled"})
    versions = children_versions(cluster, namespace)
    for pod in workload_pods(body, sidecar=True):
        replace_pod(cluster, pod)

    wait_condition(cluster, namespace, "Ready", status="True")
    assert children_versions(cluster, namespace) == versions, "fixing the pods must change no control"
    assert mesh_summary(cluster, namespace)["order-service"] == {
        "pods": 1,
        "inMesh": 1,
        "dataplane": "Sidecar",
    }


def test_ambient_enrolled_pods_are_in_the_mesh(cluster: TestCluster, namespace: str) -> None:
    body = checkout(namespace)
    cluster.apply(namespace_manifest(namespace, {"istio.io/dataplane-mode": "ambient"}))
    create_accounts(cluster, body)
    for pod in workload_pods(body, sidecar=False):
        pod["metadata"]["annotations"]["ambient.istio.io/redirection"] = "enabled"
        cluster.apply(pod)
    cluster.apply(body)

    found = wait_condition(cluster, namespace, "MeshEnrolled", status="True", reason="InMesh")

    assert "4 pods of 4 workloads" in found["message"]
    assert wait_condition(cluster, namespace, "MTLSStrict", status="True")
    assert mesh_summary(cluster, namespace)["api-gateway"]["dataplane"] == "Ambient"


# --- pods that are not there, or not who they should be ---------------------------------------------------


def test_a_selector_matching_no_pod_is_reported_until_a_pod_appears(
    cluster: TestCluster, namespace: str
) -> None:
    body = checkout(namespace)
    cluster.enrol(body)
    core(cluster).delete_namespaced_pod("checkout-fraud-engine-0", namespace, grace_period_seconds=0)
    cluster.apply(body)

    found = wait_condition(cluster, namespace, "MeshEnrolled", status="False", reason="NoMatchingPods")
    assert found["message"].startswith("fraud-engine: its selector matches no live pod"), found["message"]

    cluster.apply(next(p for p in workload_pods(body) if p["metadata"]["name"] == "checkout-fraud-engine-0"))
    wait_condition(cluster, namespace, "MeshEnrolled", status="True")


def test_pods_under_another_service_account_are_named(cluster: TestCluster, namespace: str) -> None:
    body = checkout(namespace)
    cluster.enrol(body)
    wrong = pod_manifest(
        namespace,
        "checkout-api-gateway-0",
        labels=body["spec"]["workloads"][0]["selector"],
        service_account="default",
    )
    eventually(
        lambda: service_account_exists(cluster, namespace, "default"), what="the default ServiceAccount"
    )
    replace_pod(cluster, wrong)
    cluster.apply(body)

    found = wait_condition(
        cluster, namespace, "MeshEnrolled", status="False", reason="ServiceAccountMismatch"
    )
    assert (
        "api-gateway: pods not running as api-gateway: checkout-api-gateway-0 (runs as default)"
        in found["message"]
    )

    replace_pod(cluster, workload_pods(body)[0])
    wait_condition(cluster, namespace, "MeshEnrolled", status="True")


def service_account_exists(cluster: TestCluster, namespace: str, name: str) -> bool:
    try:
        core(cluster).read_namespaced_service_account(name, namespace)
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_a_missing_service_account_is_reported_until_created(cluster: TestCluster, namespace: str) -> None:
    body = checkout(namespace)
    cluster.enrol(body)
    replace_pod(cluster, workload_pods(body)[1])  # keeps its pod
    core(cluster).delete_namespaced_service_account("order-service", namespace)
    cluster.apply(body)

    found = wait_condition(cluster, namespace, "MeshEnrolled", status="False", reason="ServiceAccountMissing")
    assert "order-service: ServiceAccount order-service does not exist" in found["message"]

    cluster.apply(service_account_manifest(namespace, "order-service"))
    wait_condition(cluster, namespace, "MeshEnrolled", status="True")


# --- the mesh's trust domain --------------------------------------------------------------------------


@pytest.fixture
def mesh_config(cluster: TestCluster) -> Iterator[dict[str, Any]]:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": MESH_ROOT},
        "data": {"mesh": "trustDomain: cluster.local\n"},
    }
    yield config
    core(cluster).delete_namespaced_config_map("istio", MESH_ROOT)


def test_a_trust_domain_the_mesh_does_not_accept_is_reported_and_an_alias_clears_it(
    cluster: TestCluster, namespace: str, mesh_config: dict[str, Any]
) -> None:
    cluster.apply(mesh_config)
    body = checkout(namespace, trustDomain="payments.example.com")
    cluster.enrol(body)
    cluster.apply(body)

    found = wait_condition(
        cluster, namespace, "MeshEnrolled", status="False", reason="TrustDomainNotAccepted"
    )
    assert "trust domain payments.example.com is not the mesh's (cluster.local" in found["message"]

    mesh_config["data"]["mesh"] += "trustDomainAliases: [payments.example.com]\n"
    cluster.apply(mesh_config)

    found = wait_condition(cluster, namespace, "MeshEnrolled", status="True")
    assert "the mesh accepts trust domain payments.example.com" in found["message"]


# --- L7 rules Istio cannot apply ----------------------------------------------------------------------------


def test_an_l7_rule_on_a_tcp_named_service_port_is_reported_until_renamed(
    cluster: TestCluster, namespace: str
) -> None:
    body = checkout(namespace)
    cluster.enrol(body)
    orders = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "orders", "namespace": namespace},
        "spec": {
            "selector": {"app.kubernetes.io/name": "order-service"},
            "ports": [{"name": "tcp-orders", "port": 443, "targetPort": 8443}],
        },
    }
    cluster.apply(orders)
    cluster.apply(body)

    found = wait_condition(
        cluster, namespace, "AuthorizationEnforced", status="False", reason="L7RuleIgnored"
    )
    assert "order-service: port 8443: Service orders port tcp-orders is tcp" in found["message"]

    orders["spec"]["ports"][0]["name"] = "http-orders"
    cluster.apply(orders)
    wait_condition(cluster, namespace, "AuthorizationEnforced", status="True")


# --- quiet, and local --------------------------------------------------------------------------------------


def test_a_pod_churn_wakes_only_its_namespaces_services_and_writes_no_control(
    cluster: TestCluster, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    """Its own operator, with no resync in the window, so every pass it logs was woken by an event."""
    churned, other = cluster.create_namespace("churn"), cluster.create_namespace("quiet")
    operator = OperatorProcess(tmp_path / "payguard.log")
    try:
        body, bystander = separate(checkout(churned)), separate(checkout(other))
        for service in (body, bystander):
            cluster.enrol(service)
            cluster.apply(service)
        flags = ["-n", churned, "-n", other, "--selector", SEPARATE_SELECTOR, "--resync-seconds", "3600"]
        operator.start(operator_kubeconfig, [*flags, "--log-level", "DEBUG"])
        for namespace in (churned, other):
            wait_condition(cluster, namespace, "Ready", status="True")  # certificates signed too
        time.sleep(2)  # the start-up passes end
        start = len(operator.log())
        versions = {ns: children_versions(cluster, ns) for ns in (churned, other)}

        selector = body["spec"]["workloads"][1]["selector"]
        names = [f"churn-{index}" for index in range(100)]
        for name in names:
            cluster.apply(pod_manifest(churned, name, labels=selector, service_account="order-service"))
        for name in names:
            core(cluster).delete_namespaced_pod(name, churned, grace_period_seconds=0)
        eventually(lambda: mesh_summary(cluster, churned)["order-service"]["pods"] == 1, what="churn settled")
        time.sleep(2)  # the last wake-ups run

        passes = [line for line in operator.log()[start:].splitlines() if "Reconciled PaymentService" in line]
        assert any(f"{churned}/checkout" in line for line in passes), "the churn woke no pass at all"
        assert not [line for line in passes if f"{other}/" in line], operator.log()[start:]
        # Only the status (its pod counts) moved: no control was written in either namespace.
        assert {ns: children_versions(cluster, ns) for ns in (churned, other)} == versions
    finally:
        operator.stop()
        for namespace in (churned, other):
            cluster.delete_namespace(namespace)


def separate(body: dict[str, Any]) -> dict[str, Any]:
    """Left to a separately started operator (the session-wide one ignores it)."""
    body["metadata"]["labels"] = {SEPARATE_LABEL: "separate"}
    return body
