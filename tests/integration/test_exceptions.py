"""Break-glass PaymentServiceExceptions on a real API server, with payguard running under its chart RBAC:
an exception adds exactly its allowance, shows in status, posts Events, is counted by the gauge, and is
gone at its end (a 1-minute exception, removed by payguard's timer) or at its deletion, leaving the
controls as rendered without it."""

from __future__ import annotations

import re
import urllib.request
from typing import Any

import pytest
from test_admission_policies import exception, my_username
from test_lifecycle import events
from test_reconcile import KINDS, WORKLOADS, apply_and_wait_ready, checkout, custom, get_child, get_service

from kube import TestCluster
from operator_harness import eventually
from payguard.settings import RunSettings

GROUP, VERSION, PLURAL = "payguard.dev", "v1alpha1", "paymentserviceexceptions"
TARGET = "checkout-order-service"


def controls(cluster: TestCluster, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Spec and payguard's annotations of every generated policy, by (kind, name); the rendered-hash
    annotation left out, as it follows every change of the rendering by design."""
    found = {}
    for workload in WORKLOADS:
        for kind in KINDS:
            child = get_child(cluster, kind, namespace, f"checkout-{workload}")
            assert child is not None
            annotations = {
                k: v
                for k, v in (child["metadata"].get("annotations") or {}).items()
                if k.startswith("payguard.dev/") and k != "payguard.dev/rendered-hash"
            }
            found[(kind, child["metadata"]["name"])] = {"spec": child["spec"], "annotations": annotations}
    return found


def active_gauge(settings: RunSettings, namespace: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = rf'^payguard_active_exceptions\{{namespace="{namespace}",payment_service="checkout"\}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else None


def status_exceptions(cluster: TestCluster, namespace: str) -> list[dict[str, Any]]:
    return list((get_service(cluster, namespace).get("status") or {}).get("exceptions") or [])


def create(cluster: TestCluster, body: dict[str, Any]) -> None:
    custom(cluster).create_namespaced_custom_object(
        GROUP, VERSION, body["metadata"]["namespace"], PLURAL, body
    )


def test_an_exception_adds_exactly_its_allowance_and_is_gone_at_its_end(
    cluster: TestCluster, namespace: str, payguard_operator: RunSettings
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    before = controls(cluster, namespace)
    body = exception(namespace, requestedBy=my_username(cluster), duration="1m")
    body["spec"]["allow"]["caller"]["methods"] = ["GET"]

    create(cluster, body)

    eventually(lambda: controls(cluster, namespace) != before, what="the exception to be applied")
    during = controls(cluster, namespace)
    changed = {key for key in before if before[key] != during[key]}
    assert changed == {("AuthorizationPolicy", TARGET), ("NetworkPolicy", TARGET)}
    policy_before, policy = before[("AuthorizationPolicy", TARGET)], during[("AuthorizationPolicy", TARGET)]
    assert policy["spec"]["rules"][:-1] == policy_before["spec"]["rules"]
    assert policy["spec"]["rules"][-1] == {
        "from": [{"source": {"principals": ["cluster.local/ns/support/sa/debugger"]}}],
        "to": [{"operation": {"ports": ["8443"], "methods": ["GET"]}}],
    }
    assert policy["annotations"] == {
        **policy_before["annotations"],
        "payguard.dev/exceptions": "incident-4711",
    }
    network_before, network = before[("NetworkPolicy", TARGET)], during[("NetworkPolicy", TARGET)]
    assert network["spec"]["ingress"][:-1] == network_before["spec"]["ingress"]
    assert network["spec"]["ingress"][-1] == {
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "support"}}}],
        "ports": [{"port": 8443, "protocol": "TCP"}],
    }
    [entry] = eventually(lambda: status_exceptions(cluster, namespace), what="status to list the exception")
    assert (entry["name"], entry["state"], entry["workload"]) == ("incident-4711", "Active", "order-service")
    assert entry["requestedBy"] == my_username(cluster) and entry["ticket"] == "INC-4711"
    assert entry["allows"] == "caller principal support/debugger ports 8443 methods GET"
    assert entry["expiresAt"]
    [activated] = eventually(lambda: events(cluster, namespace, "ExceptionActivated"), what="the Event")
    assert "incident-4711" in activated.note and "INC-4711" in activated.note
    assert eventually(lambda: active_gauge(payguard_operator, namespace) == 1, what="gauge 1")

    # Nothing touches the exception or the PaymentService now: only payguard's timer can end it.
    eventually(lambda: controls(cluster, namespace) == before, timeout=90, what="the allowance to be removed")
    eventually(lambda: status_exceptions(cluster, namespace) == [], what="status to drop the exception")
    [expired] = eventually(lambda: events(cluster, namespace, "ExceptionExpired"), what="the expiry Event")
    assert "incident-4711 expired at " in expired.note
    assert eventually(lambda: active_gauge(payguard_operator, namespace) == 0, what="gauge back to 0")
    ready = next(c for c in get_service(cluster, namespace)["status"]["conditions"] if c["type"] == "InSync")
    assert ready["reason"] == "NoDrift"  # an exception's start and end are not drift


def test_a_deleted_exception_leaves_nothing_behind(
    cluster: TestCluster, namespace: str, payguard_operator: RunSettings
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    before = controls(cluster, namespace)
    egress = {"egress": {"cidr": "198.51.100.0/24", "ports": [443]}}
    create(cluster, exception(namespace, requestedBy="someone", allow=egress, duration="2h"))
    eventually(lambda: controls(cluster, namespace) != before, what="the exception to be applied")
    assert {k for k in before if before[k] != controls(cluster, namespace)[k]} == {("NetworkPolicy", TARGET)}

    custom(cluster).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "incident-4711")

    eventually(lambda: controls(cluster, namespace) == before, what="the allowance to be removed")
    eventually(lambda: status_exceptions(cluster, namespace) == [], what="status to drop the exception")
    [gone] = eventually(lambda: events(cluster, namespace, "ExceptionExpired"), what="the Event")
    assert "was deleted" in gone.note
    assert eventually(lambda: active_gauge(payguard_operator, namespace) == 0, what="gauge back to 0")


def test_an_allowance_the_spec_could_not_declare_is_reported_and_not_applied(
    cluster: TestCluster, namespace: str
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    before = controls(cluster, namespace)
    caller = {"caller": {"workload": "fraud-engine", "ports": [7777]}}  # order-service does not serve 7777

    create(cluster, exception(namespace, requestedBy="someone", allow=caller))

    [entry] = eventually(lambda: status_exceptions(cluster, namespace), what="status to report the exception")
    assert entry["state"] == "Refused"
    assert entry["message"].startswith("spec.allow.caller.ports")
    [refused] = eventually(lambda: events(cluster, namespace, "ExceptionRefused"), what="the Warning Event")
    assert refused.type == "Warning"
    assert controls(cluster, namespace) == before


pytestmark = pytest.mark.usefixtures("payguard_operator")
