"""The reconcile core against a real API server: payguard running under its own RBAC keeps every
workload's zero-trust controls in place, repairs or reports drift, and never touches what is not its own."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from kube import TestCluster
from operator_harness import eventually
from payguard.settings import RunSettings

pytestmark = pytest.mark.usefixtures("payguard_operator")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "checkout.yaml"
KINDS = {
    "PeerAuthentication": ("security.istio.io", "v1", "peerauthentications"),
    "AuthorizationPolicy": ("security.istio.io", "v1", "authorizationpolicies"),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies"),
}
WORKLOADS = ("api-gateway", "order-service", "fraud-engine", "settlement-gateway")


def checkout(namespace: str, **spec_overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"]["namespace"] = namespace
    body["spec"].update(spec_overrides)
    return body


def custom(cluster: TestCluster) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(cluster.api_client)


def get_service(cluster: TestCluster, namespace: str, name: str = "checkout") -> dict[str, Any]:
    body: dict[str, Any] = custom(cluster).get_namespaced_custom_object(
        "payguard.dev", "v1alpha1", namespace, "paymentservices", name
    )
    return body


def get_child(cluster: TestCluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    group, version, plural = KINDS[kind]
    try:
        body: dict[str, Any] = custom(cluster).get_namespaced_custom_object(
            group, version, namespace, plural, name
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return body


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in (body.get("status") or {}).get("conditions") or []:
        if item["type"] == kind:
            return dict(item)
    return {}


def wait_condition(
    cluster: TestCluster,
    namespace: str,
    kind: str,
    *,
    status: str,
    reason: str | None = None,
    timeout: float = 30,
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        body = get_service(cluster, namespace)
        found = condition(body, kind)
        current = (body.get("status") or {}).get("observedGeneration") == body["metadata"]["generation"]
        if current and found.get("status") == status and (reason is None or found.get("reason") == reason):
            return found
        return None

    return eventually(probe, timeout=timeout, what=f"{kind}={status} ({reason})")


def apply_and_wait_ready(cluster: TestCluster, body: dict[str, Any]) -> dict[str, Any]:
    cluster.enrol(body)
    cluster.apply(body)
    wait_condition(cluster, body["metadata"]["namespace"], "Ready", status="True")
    return get_service(cluster, body["metadata"]["namespace"])


def patch_child(cluster: TestCluster, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
    """An edit by someone else (kubectl edit, another controller), as a JSON merge patch."""
    group, version, plural = KINDS[kind]
    custom(cluster).patch_namespaced_custom_object(
        group, version, namespace, plural, name, patch, _content_type="application/merge-patch+json"
    )


def test_main_example_creates_every_child_and_becomes_ready(cluster: TestCluster, namespace: str) -> None:
    service = apply_and_wait_ready(cluster, checkout(namespace))

    for workload in WORKLOADS:
        for kind in KINDS:
            child = get_child(cluster, kind, namespace, f"checkout-{workload}")
            assert child is not None, f"{kind} for {workload} missing"
            labels = child["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "payguard"
            assert labels["payguard.dev/payment-service"] == "checkout"
            assert labels["payguard.dev/workload"] == workload
            [owner] = child["metadata"]["ownerReferences"]
            assert (owner["kind"], owner["uid"], owner["controller"]) == (
                "PaymentService",
                service["metadata"]["uid"],
                True,
            )
            managers = {entry["manager"] for entry in child["metadata"]["managedFields"]}
            assert managers == {"payguard"}
    peer = get_child(cluster, "PeerAuthentication", namespace, "checkout-order-service")
    assert peer is not None and peer["spec"]["mtls"]["mode"] == "STRICT"
    policy = get_child(cluster, "AuthorizationPolicy", namespace, "checkout-order-service")
    assert policy is not None
    principals = [rule["from"][0]["source"]["principals"][0] for rule in policy["spec"]["rules"]]
    assert principals == [
        f"cluster.local/ns/{namespace}/sa/api-gateway",
        "cluster.local/ns/monitoring/sa/prometheus",
    ]
    for kind in ("MTLSStrict", "AuthorizationEnforced", "NetworkIsolated", "InSync", "LeastPrivilege"):
        assert condition(service, kind)["status"] == "True", condition(service, kind)
    assert service["status"]["workloadCount"] == 4


def test_workload_without_callers_gets_an_allow_nothing_policy(cluster: TestCluster, namespace: str) -> None:
    body = checkout(namespace)
    body["spec"]["workloads"][2]["callers"] = []  # fraud-engine
    apply_and_wait_ready(cluster, body)
    policy = get_child(cluster, "AuthorizationPolicy", namespace, "checkout-fraud-engine")
    assert policy is not None
    assert policy["spec"]["action"] == "ALLOW"
    assert "rules" not in policy["spec"]
    network = get_child(cluster, "NetworkPolicy", namespace, "checkout-fraud-engine")
    assert network is not None and "ingress" not in network["spec"]


def resource_versions(cluster: TestCluster, namespace: str) -> dict[str, str]:
    versions = {"PaymentService": get_service(cluster, namespace)["metadata"]["resourceVersion"]}
    for workload in WORKLOADS:
        for kind in KINDS:
            child = get_child(cluster, kind, namespace, f"checkout-{workload}")
            assert child is not None
            versions[f"{kind}/{workload}"] = child["metadata"]["resourceVersion"]
    return versions


def test_passes_with_nothing_changed_write_nothing(
    cluster: TestCluster, namespace: str, payguard_operator: RunSettings
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    time.sleep(payguard_operator.resync_seconds + 1)  # let the passes triggered by our own writes settle
    before = resource_versions(cluster, namespace)

    time.sleep(payguard_operator.resync_seconds * 2 + 1)  # at least two full resyncs

    assert resource_versions(cluster, namespace) == before


@pytest.mark.parametrize(
    ("kind", "workload", "tamper", "drifted_path"),
    [
        ("PeerAuthentication", "order-service", {"spec": {"mtls": {"mode": "PERMISSIVE"}}}, "spec.mtls.mode"),
        (
            "PeerAuthentication",
            "order-service",
            {"spec": {"portLevelMtls": {"8443": {"mode": "DISABLE"}}}},
            "spec.portLevelMtls",
        ),
        (
            "AuthorizationPolicy",
            "fraud-engine",
            {"spec": {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/x/sa/y"]}}]}, {}]}},
            "spec.rules",
        ),
        (
            "NetworkPolicy",
            "settlement-gateway",
            {"spec": {"ingress": [{}]}},
            "spec.ingress",
        ),
    ],
    ids=["permissive-mtls", "port-level-override", "extra-authorization-rule", "widened-network-policy"],
)
def test_edited_child_is_reverted(
    cluster: TestCluster, namespace: str, kind: str, workload: str, tamper: dict[str, Any], drifted_path: str
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    name = f"checkout-{workload}"
    rendered = copy.deepcopy(get_child(cluster, kind, namespace, name))
    assert rendered is not None
    reverted_before = REGISTRY.get_sample_value("payguard_drift_reverted_total", {"kind": kind}) or 0

    patch_child(cluster, kind, namespace, name, tamper)

    def restored() -> bool:
        live = get_child(cluster, kind, namespace, name)
        return live is not None and live["spec"] == rendered["spec"]

    eventually(restored, what=f"{kind} {name} reverted")
    in_sync = wait_condition(cluster, namespace, "InSync", status="True", reason="DriftReverted")
    assert f"{kind}/{name}" in in_sync["message"]
    assert drifted_path in in_sync["message"]
    # The operator runs in this process, so its metrics are in this registry.
    assert (REGISTRY.get_sample_value("payguard_drift_reverted_total", {"kind": kind}) or 0) > reverted_before


def test_deleted_child_is_recreated(cluster: TestCluster, namespace: str) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    group, version, plural = KINDS["NetworkPolicy"]
    old = get_child(cluster, "NetworkPolicy", namespace, "checkout-api-gateway")
    assert old is not None

    custom(cluster).delete_namespaced_custom_object(group, version, namespace, plural, "checkout-api-gateway")

    def recreated() -> dict[str, Any] | None:
        live = get_child(cluster, "NetworkPolicy", namespace, "checkout-api-gateway")
        return live if live and live["metadata"]["uid"] != old["metadata"]["uid"] else None

    assert eventually(recreated, what="NetworkPolicy recreated")["spec"] == old["spec"]


def test_drift_is_reported_and_left_in_place_under_report(cluster: TestCluster, namespace: str) -> None:
    apply_and_wait_ready(cluster, checkout(namespace, driftPolicy="Report"))

    patch_child(
        cluster,
        "PeerAuthentication",
        namespace,
        "checkout-order-service",
        {"spec": {"mtls": {"mode": "PERMISSIVE"}}},
    )

    in_sync = wait_condition(cluster, namespace, "InSync", status="False", reason="DriftDetected")
    assert "PeerAuthentication/checkout-order-service: spec.mtls.mode" in in_sync["message"]
    mtls = wait_condition(cluster, namespace, "MTLSStrict", status="False")
    assert "order-service" in mtls["message"]
    assert wait_condition(cluster, namespace, "Ready", status="False")
    time.sleep(1)
    live = get_child(cluster, "PeerAuthentication", namespace, "checkout-order-service")
    assert live is not None and live["spec"]["mtls"]["mode"] == "PERMISSIVE"


def test_deleted_child_is_reported_under_report(cluster: TestCluster, namespace: str) -> None:
    apply_and_wait_ready(cluster, checkout(namespace, driftPolicy="Report"))
    group, version, plural = KINDS["AuthorizationPolicy"]

    custom(cluster).delete_namespaced_custom_object(
        group, version, namespace, plural, "checkout-fraud-engine"
    )

    wait_condition(cluster, namespace, "Ready", status="False")
    authorization = condition(get_service(cluster, namespace), "AuthorizationEnforced")
    assert authorization["status"] == "False"
    assert "AuthorizationPolicy/checkout-fraud-engine" in authorization["message"]
    assert get_child(cluster, "AuthorizationPolicy", namespace, "checkout-fraud-engine") is None


def foreign(kind: str, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    group, version, _ = KINDS[kind]
    return {
        "apiVersion": f"{group}/{version}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_foreign_allow_all_network_policy_is_reported_by_name(cluster: TestCluster, namespace: str) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))

    cluster.apply(
        foreign(
            "NetworkPolicy",
            namespace,
            "allow-all",
            {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]},
        )
    )

    least = wait_condition(
        cluster, namespace, "LeastPrivilege", status="False", reason="ForeignNetworkPolicy"
    )
    assert f"NetworkPolicy {namespace}/allow-all" in least["message"]
    assert condition(get_service(cluster, namespace), "Ready")["status"] == "False"


def test_foreign_permissive_namespace_policy_is_reported_by_name_in_audit_mode(
    cluster: TestCluster, namespace: str
) -> None:
    cluster.apply(
        foreign("PeerAuthentication", namespace, "legacy-permissive", {"mtls": {"mode": "PERMISSIVE"}})
    )

    cluster.apply(checkout(namespace, enforcement="Audit"))

    mtls = wait_condition(cluster, namespace, "MTLSStrict", status="False")
    assert f"PeerAuthentication {namespace}/legacy-permissive" in mtls["message"]
    ready = wait_condition(cluster, namespace, "Ready", status="False", reason="AuditMode")
    assert "Audit" in ready["message"]
    policy = get_child(cluster, "AuthorizationPolicy", namespace, "checkout-api-gateway")
    assert policy is not None and policy["metadata"]["annotations"]["istio.io/dry-run"] == "true"
    assert get_child(cluster, "PeerAuthentication", namespace, "checkout-api-gateway") is None
    assert get_child(cluster, "NetworkPolicy", namespace, "checkout-api-gateway") is None


def test_managed_strict_policy_overrides_a_permissive_namespace_policy(
    cluster: TestCluster, namespace: str
) -> None:
    cluster.apply(
        foreign("PeerAuthentication", namespace, "legacy-permissive", {"mtls": {"mode": "PERMISSIVE"}})
    )
    service = apply_and_wait_ready(cluster, checkout(namespace))
    assert condition(service, "MTLSStrict")["status"] == "True"


def test_older_foreign_workload_policy_weakening_mtls_is_reported_by_name(
    cluster: TestCluster, namespace: str
) -> None:
    selector = {"matchLabels": {"app.kubernetes.io/name": "order-service"}}
    cluster.apply(
        foreign(
            "PeerAuthentication",
            namespace,
            "order-legacy",
            {"selector": selector, "mtls": {"mode": "PERMISSIVE"}},
        )
    )
    time.sleep(1.1)  # creationTimestamp has one-second resolution; Istio picks the oldest policy

    cluster.apply(checkout(namespace))

    mtls = wait_condition(cluster, namespace, "MTLSStrict", status="False")
    assert f"PeerAuthentication {namespace}/order-legacy" in mtls["message"]


def test_foreign_object_with_a_clashing_name_is_left_untouched(cluster: TestCluster, namespace: str) -> None:
    squatter = foreign(
        "NetworkPolicy",
        namespace,
        "checkout-api-gateway",
        {"podSelector": {"matchLabels": {"team": "other"}}, "policyTypes": ["Ingress"]},
    )
    cluster.apply(squatter, field_manager="someone-else")
    before = get_child(cluster, "NetworkPolicy", namespace, "checkout-api-gateway")
    assert before is not None

    cluster.apply(checkout(namespace))

    ready = wait_condition(cluster, namespace, "Ready", status="False", reason="NameConflict")
    assert "NetworkPolicy/checkout-api-gateway" in ready["message"]
    time.sleep(1)
    after = get_child(cluster, "NetworkPolicy", namespace, "checkout-api-gateway")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # The other workloads still got their controls: one conflict does not hold the rest back.
    assert get_child(cluster, "NetworkPolicy", namespace, "checkout-order-service") is not None


def test_removed_workload_has_its_children_pruned(cluster: TestCluster, namespace: str) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    body = checkout(namespace)
    body["spec"]["workloads"] = [w for w in body["spec"]["workloads"] if w["name"] != "api-gateway"]
    body["spec"]["workloads"][0]["callers"] = [
        c for c in body["spec"]["workloads"][0]["callers"] if c.get("workload") != "api-gateway"
    ]

    apply_and_wait_ready(cluster, body)

    for kind in KINDS:
        eventually(
            lambda kind=kind: get_child(cluster, kind, namespace, "checkout-api-gateway") is None,
            what=f"{kind} pruned",
        )
        assert get_child(cluster, kind, namespace, "checkout-order-service") is not None


def test_dry_run_annotation_added_by_hand_is_removed(cluster: TestCluster, namespace: str) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))

    patch_child(
        cluster,
        "AuthorizationPolicy",
        namespace,
        "checkout-order-service",
        {"metadata": {"annotations": {"istio.io/dry-run": "true"}}},
    )

    def enforced_again() -> bool:
        live = get_child(cluster, "AuthorizationPolicy", namespace, "checkout-order-service")
        return live is not None and "istio.io/dry-run" not in (live["metadata"].get("annotations") or {})

    eventually(enforced_again, what="dry-run annotation removed")
    in_sync = wait_condition(cluster, namespace, "InSync", status="True", reason="DriftReverted")
    assert "metadata.annotations[istio.io/dry-run]" in in_sync["message"]


def test_switching_from_audit_to_enforce_makes_policies_enforcing(
    cluster: TestCluster, namespace: str
) -> None:
    cluster.apply(checkout(namespace, enforcement="Audit"))
    wait_condition(cluster, namespace, "Ready", status="False", reason="AuditMode")

    apply_and_wait_ready(cluster, checkout(namespace, enforcement="Enforce"))

    for workload in WORKLOADS:
        policy = get_child(cluster, "AuthorizationPolicy", namespace, f"checkout-{workload}")
        assert policy is not None and "istio.io/dry-run" not in policy["metadata"]["annotations"]
        assert get_child(cluster, "PeerAuthentication", namespace, f"checkout-{workload}") is not None
        assert get_child(cluster, "NetworkPolicy", namespace, f"checkout-{workload}") is not None


def test_spec_only_the_operator_can_refuse_keeps_the_last_good_controls(
    cluster: TestCluster, namespace: str
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    before = resource_versions(cluster, namespace)
    body = checkout(namespace)
    # Valid for the CRD, which cannot know the namespace: a principal that is one of our own workloads.
    body["spec"]["workloads"][2]["callers"] = [
        {"principal": {"namespace": namespace, "serviceAccount": "order-service"}}
    ]

    cluster.apply(body)

    ready = wait_condition(cluster, namespace, "Ready", status="False", reason="InvalidSpec")
    assert "spec.workloads[2].callers[0].principal" in ready["message"]
    after = resource_versions(cluster, namespace)
    del before["PaymentService"], after["PaymentService"]
    assert after == before
