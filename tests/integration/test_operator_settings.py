"""Every operator-wide setting, proven end to end: `payguard run` started as its own process with the flag
under test, observed by what it writes (and, for the namespace scope, by what the API server's audit log
says it read). The session-wide operator leaves these PaymentServices alone (see SEPARATE_LABEL)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from test_reconcile import condition, custom, get_service

from kube import AUDITED_USER, TestCluster
from operator_harness import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    SEPARATE_LABEL,
    SEPARATE_SELECTOR,
    OperatorProcess,
    eventually,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "checkout.yaml"
POLICY_KINDS = {
    "PeerAuthentication": ("security.istio.io", "v1", "peerauthentications"),
    "AuthorizationPolicy": ("security.istio.io", "v1", "authorizationpolicies"),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies"),
    "Certificate": ("cert-manager.io", "v1", "certificates"),
}


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(tmp_path / "payguard.log")
    yield process
    process.stop()


def separate_checkout(namespace: str, *, name: str = "checkout", **labels: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"].update(name=name, namespace=namespace, labels={SEPARATE_LABEL: "separate", **labels})
    return body


def children(cluster: TestCluster, kind: str, namespace: str) -> list[dict[str, Any]]:
    group, version, plural = POLICY_KINDS[kind]
    listed = custom(cluster).list_namespaced_custom_object(group, version, namespace, plural)
    return list(listed["items"])


def wait_reconciled(cluster: TestCluster, namespace: str, name: str = "checkout") -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        body = get_service(cluster, namespace, name)
        observed = (body.get("status") or {}).get("observedGeneration")
        return body if observed == body["metadata"]["generation"] else None

    return eventually(probe, timeout=60, what=f"PaymentService {namespace}/{name} reconciled")


def assert_untouched(cluster: TestCluster, namespace: str, name: str) -> None:
    """Not written to by any payguard: no status, no field of payguard's, no child, no Event about it."""
    body = get_service(cluster, namespace, name)
    assert "status" not in body, body.get("status")
    managers = {entry["manager"] for entry in body["metadata"].get("managedFields") or []}
    assert "payguard" not in managers and not any(m.startswith("kopf") for m in managers), managers
    for kind in POLICY_KINDS:
        owned = [
            c["metadata"]["name"]
            for c in children(cluster, kind, namespace)
            if (c["metadata"].get("labels") or {}).get("payguard.dev/payment-service") == name
        ]
        assert owned == [], f"{kind} written for {namespace}/{name}: {owned}"
    # core/v1: the events.k8s.io model cannot read cert-manager's Events (eventTime null).
    events = client.CoreV1Api(cluster.api_client).list_namespaced_event(namespace).items
    assert [e.message for e in events if e.involved_object and e.involved_object.name == name] == []


def test_audit_only_switch_enforces_nothing_and_says_so(
    cluster: TestCluster, namespace: str, operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    cluster.apply(separate_checkout(namespace))  # enforcement: Enforce in the manifest
    operator.start(operator_kubeconfig, ["--audit-only", "-n", namespace, "--selector", SEPARATE_SELECTOR])

    service = wait_reconciled(cluster, namespace)
    assert service["spec"]["enforcement"] == "Enforce"
    assert children(cluster, "NetworkPolicy", namespace) == []
    assert children(cluster, "PeerAuthentication", namespace) == []
    policies = children(cluster, "AuthorizationPolicy", namespace)
    assert len(policies) == 4
    assert {p["metadata"]["annotations"].get("istio.io/dry-run") for p in policies} == {"true"}
    for kind in ("AuthorizationEnforced", "NetworkIsolated"):
        found = condition(service, kind)
        assert (found["status"], found["reason"]) == ("False", "AuditMode"), found
    assert condition(service, "Ready")["status"] == "False"


def test_selector_leaves_other_services_untouched_across_a_restart(
    cluster: TestCluster, namespace: str, operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    # Both exist before the operator starts, so its start-up listing sees both.
    cluster.apply(separate_checkout(namespace, name="cde", tier="cde"))
    cluster.apply(separate_checkout(namespace, name="connected", tier="connected"))
    flags = ["-n", namespace, "--selector", f"{SEPARATE_SELECTOR},tier=cde", "--resync-seconds", "1"]
    operator.start(operator_kubeconfig, flags)
    wait_reconciled(cluster, namespace, "cde")
    time.sleep(3)  # three resyncs
    assert_untouched(cluster, namespace, "connected")

    operator.stop()
    operator.start(operator_kubeconfig, flags)
    # A change after the restart is reconciled, so the restart's own queue has been worked through.
    selected = separate_checkout(namespace, name="cde", tier="cde")
    selected["spec"]["workloads"][2]["callers"] = []
    cluster.apply(selected)
    wait_reconciled(cluster, namespace, "cde")
    time.sleep(3)
    assert_untouched(cluster, namespace, "connected")


def test_namespace_scope_reads_and_writes_nothing_outside_it_but_the_mesh_root(
    cluster: TestCluster, audited_operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    if cluster.audit_log is None:
        pytest.skip(
            "needs the local control plane's audit log; PAYGUARD_TEST_KUBECONFIG names another cluster"
        )
    inside, outside, mesh_root = (cluster.create_namespace(prefix) for prefix in ("in", "out", "root"))
    try:
        cluster.apply(separate_checkout(inside))
        cluster.apply(separate_checkout(outside))
        # A mesh-wide ALLOW-everything policy in the root namespace widens every workload of the mesh.
        cluster.apply(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "allow-all", "namespace": mesh_root},
                "spec": {"action": "ALLOW", "rules": [{}]},
            }
        )
        started = time.time()
        operator.start(
            audited_operator_kubeconfig,
            ["-n", inside, "--mesh-root-namespace", mesh_root, "--selector", SEPARATE_SELECTOR],
        )
        service = wait_reconciled(cluster, inside)
        time.sleep(2)
        operator.stop()

        assert_untouched(cluster, outside, "checkout")
        # Observed, not assumed: the mesh-wide policy outside the namespace is seen and named.
        least_privilege = condition(service, "LeastPrivilege")
        assert least_privilege["status"] == "False", least_privilege
        assert f"{mesh_root}/allow-all" in least_privilege["message"]

        requests = audited_requests(cluster.audit_log, since=started)
        assert requests, "the audit log recorded no request of the operator"
        strays = [
            r
            for r in requests
            if r["namespace"] not in ("", inside, mesh_root)
            or (r["namespace"] == "" and r["resource"] not in CLUSTER_SCOPED_READS)
        ]
        assert strays == [], strays
        writes = [r for r in requests if r["verb"] in ("create", "update", "patch", "delete")]
        assert writes and {r["namespace"] for r in writes} == {inside}, writes
    finally:
        for name in (inside, outside, mesh_root):
            cluster.delete_namespace(name)


# Cluster-scoped reads a namespaced operator still makes: issuers for CertificatesReady, and kopf's own
# discovery of the resources it watches (non-resource requests carry no resource at all).
CLUSTER_SCOPED_READS = ("", "clusterissuers", "customresourcedefinitions", "namespaces")


def audited_requests(log: Path, *, since: float) -> list[dict[str, str]]:
    """Every finished request of the audited operator since `since`, as verb, resource, namespace."""
    requests = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["user"]["username"] != AUDITED_USER or event.get("stage") != "ResponseComplete":
            continue
        received = event["requestReceivedTimestamp"].replace("Z", "+00:00")
        if _epoch(received) < since - 1:
            continue
        ref = event.get("objectRef") or {}
        requests.append(
            {
                "verb": event["verb"],
                "resource": ref.get("resource", ""),
                "namespace": ref.get("namespace", ""),
                "uri": event["requestURI"],
            }
        )
    return requests


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_platform_flags_move_the_essential_egress(
    cluster: TestCluster, namespace: str, operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    cluster.apply(separate_checkout(namespace))
    operator.start(
        operator_kubeconfig,
        [
            *("-n", namespace, "--selector", SEPARATE_SELECTOR),
            *("--dns", "openshift-dns/dns.operator.openshift.io/daemonset-dns=default", "--dns-port", "5353"),
            *("--istiod", "istio-canary/app=istiod,istio.io/rev=canary", "--istiod-port", "15010"),
            *("--mesh-ca", "cert-manager/app=cert-manager-istio-csr", "--mesh-ca-port", "6443"),
        ],
    )
    wait_reconciled(cluster, namespace)
    [policy] = [
        p
        for p in children(cluster, "NetworkPolicy", namespace)
        if p["metadata"]["name"] == "checkout-order-service"
    ]
    dns, istiod, mesh_ca = policy["spec"]["egress"][-3:]
    assert dns == {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}},
                "podSelector": {"matchLabels": {"dns.operator.openshift.io/daemonset-dns": "default"}},
            }
        ],
        "ports": [{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}],
    }
    assert istiod == {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-canary"}},
                "podSelector": {"matchLabels": {"app": "istiod", "istio.io/rev": "canary"}},
            }
        ],
        "ports": [{"port": 15010, "protocol": "TCP"}],
    }
    assert mesh_ca == {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cert-manager"}},
                "podSelector": {"matchLabels": {"app": "cert-manager-istio-csr"}},
            }
        ],
        "ports": [{"port": 6443, "protocol": "TCP"}],
    }


def test_cluster_network_flags_refuse_an_overlapping_egress_cidr(
    cluster: TestCluster, namespace: str, operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    cluster.apply(separate_checkout(namespace))  # settlement-gateway's egress: 203.0.113.0/24
    flags = ["-n", namespace, "--selector", SEPARATE_SELECTOR, "--pod-cidr", "10.244.0.0/16"]
    operator.start(operator_kubeconfig, [*flags, "--service-cidr", "203.0.112.0/23"])

    service = wait_reconciled(cluster, namespace)

    ready = condition(service, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec"), ready
    assert "spec.workloads[3].egress[0].cidr" in ready["message"] and "--service-cidr" in ready["message"]
    assert children(cluster, "NetworkPolicy", namespace) == []


def test_an_operator_left_to_itself_exits_cleanly_on_sigterm(
    cluster: TestCluster, namespace: str, operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    operator.start(operator_kubeconfig, ["-n", namespace, "--selector", SEPARATE_SELECTOR])
    assert operator.process is not None
    process = operator.process
    operator.stop()
    assert process.returncode == 0, operator.log()


def test_mesh_config_name_chooses_which_mesh_config_judges_the_trust_domain(
    cluster: TestCluster, namespace: str, operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    # As the chart grants it with operator.meshConfigName=istio-canary (tests/unit/test_chart.py).
    name, root = "istio-canary", "istio-system"
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    rbac.create_namespaced_role(
        root,
        {
            "metadata": {"name": "payguard-mesh-config-canary"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [name],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        root,
        {
            "metadata": {"name": "payguard-mesh-config-canary"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "payguard-mesh-config-canary",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": OPERATOR_ACCOUNT, "namespace": OPERATOR_NAMESPACE}
            ],
        },
    )
    core = client.CoreV1Api(cluster.api_client)
    core.create_namespaced_config_map(
        root, {"metadata": {"name": name}, "data": {"mesh": "trustDomain: canary.example\n"}}
    )
    try:
        body = separate_checkout(namespace)
        cluster.enrol(body)
        cluster.apply(body)
        operator.start(
            operator_kubeconfig,
            ["-n", namespace, "--selector", SEPARATE_SELECTOR, "--mesh-config-name", name],
        )

        def refused() -> dict[str, Any] | None:
            found = condition(get_service(cluster, namespace), "MeshEnrolled")
            return found if found.get("reason") == "TrustDomainNotAccepted" else None

        found = eventually(refused, timeout=60, what="MeshEnrolled=False (TrustDomainNotAccepted)")
        assert f"(canary.example, mesh config {root}/{name})" in found["message"], found["message"]
    finally:
        core.delete_namespaced_config_map(name, root)
        rbac.delete_namespaced_role_binding("payguard-mesh-config-canary", root)
        rbac.delete_namespaced_role("payguard-mesh-config-canary", root)
