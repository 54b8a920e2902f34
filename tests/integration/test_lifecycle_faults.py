"""Faults around deletion and break-glass on a real API server, with `payguard run` as its own process that
the test stops and starts (the session operator leaves these PaymentServices alone, see SEPARATE_LABEL):
a deletion while payguard is down waits for it and is carried out when it is back; a restart half-way
through retaining finishes the job; an exception that ends (or is deleted) while payguard is down is
removed, announced and uncounted as soon as it is back."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from test_admission_policies import exception, my_username
from test_exceptions import TARGET, controls, create, status_exceptions
from test_lifecycle import (
    FINALIZER,
    canary_collected,
    canary_owned_by,
    delete_service,
    events,
    service_gone,
)
from test_reconcile import KINDS, WORKLOADS, apply_and_wait_ready, checkout, custom, get_service

from kube import TestCluster
from localcluster import free_port
from operator_harness import SEPARATE_LABEL, SEPARATE_SELECTOR, OperatorProcess, eventually
from payguard.retention import detach

pytestmark = pytest.mark.usefixtures("cert_manager")

EXCEPTIONS = "paymentserviceexceptions"
# Every kind of control payguard generates, Certificates included (test_reconcile's KINDS are the policies).
CONTROL_KINDS = {**KINDS, "Certificate": ("cert-manager.io", "v1", "certificates")}


def get_control(cluster: TestCluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    group, version, plural = CONTROL_KINDS[kind]
    try:
        body: dict[str, Any] = custom(cluster).get_namespaced_custom_object(
            group, version, namespace, plural, name
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return body


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(tmp_path / "payguard.log")
    yield process
    process.stop()


def separate_checkout(namespace: str, **spec: Any) -> dict[str, Any]:
    body = checkout(namespace, **spec)
    body["metadata"]["labels"] = {SEPARATE_LABEL: "separate"}
    return body


def flags(namespace: str, metrics_port: int = 0) -> list[str]:
    scope = ["-n", namespace, "--selector", SEPARATE_SELECTOR, "--resync-seconds", "5"]
    return [*scope, "--metrics-port", str(metrics_port), "--metrics-address", "127.0.0.1"]


def all_controls(cluster: TestCluster, namespace: str) -> dict[tuple[str, str], dict[str, Any] | None]:
    return {
        (kind, f"checkout-{workload}"): get_control(cluster, kind, namespace, f"checkout-{workload}")
        for workload in WORKLOADS
        for kind in CONTROL_KINDS
    }


def control_uids(cluster: TestCluster, namespace: str) -> dict[tuple[str, str], str]:
    """Each control's uid: one deleted and created again (or deleted) shows here, without a watch."""
    found = all_controls(cluster, namespace)
    return {key: child["metadata"]["uid"] for key, child in found.items() if child is not None}


def assert_retained(cluster: TestCluster, namespace: str, uid: str) -> None:
    for (kind, name), child in all_controls(cluster, namespace).items():
        assert child is not None, f"{kind} {name} was removed"
        metadata = child["metadata"]
        assert not metadata.get("ownerReferences"), f"{kind} {name} still has an owner"
        assert metadata["labels"]["payguard.dev/retained"] == "true", f"{kind} {name} not marked"
        assert f"(uid {uid})" in metadata["annotations"]["payguard.dev/retained-from"]


def test_a_deletion_while_payguard_is_down_waits_for_it_and_is_carried_out_when_it_is_back(
    cluster: TestCluster, namespace: str, operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    operator.start(operator_kubeconfig, flags(namespace))
    service = apply_and_wait_ready(cluster, separate_checkout(namespace))
    uid = service["metadata"]["uid"]
    canary_owned_by(cluster, namespace, service)
    operator.stop()

    uids = control_uids(cluster, namespace)
    delete_service(cluster, namespace)

    # payguard is down: its finalizer holds the PaymentService, so the garbage collector leaves the
    # controls (and the canary) alone, every one still owned and in force.
    waiting = get_service(cluster, namespace)
    assert waiting["metadata"]["deletionTimestamp"]
    assert waiting["metadata"]["finalizers"] == [FINALIZER]
    for (kind, name), child in all_controls(cluster, namespace).items():
        assert child is not None, f"{kind} {name} was removed while payguard was down"
        assert [ref["uid"] for ref in child["metadata"]["ownerReferences"]] == [uid]
    assert not canary_collected(cluster, namespace)

    operator.start(operator_kubeconfig, flags(namespace))

    eventually(lambda: service_gone(cluster, namespace), what="the PaymentService to be released")
    # The garbage collector of the local control plane is slow on a loaded machine.
    eventually(lambda: canary_collected(cluster, namespace), timeout=120, what="the garbage collector to act")
    assert_retained(cluster, namespace, uid)
    assert control_uids(cluster, namespace) == uids  # the very same objects: none deleted and made again
    [retained] = events(cluster, namespace, "Retained")
    assert "NetworkPolicy/checkout-order-service" in retained.note
    assert f"Retained PaymentService {namespace}/checkout" in operator.this_run()


def test_a_restart_half_way_through_retaining_finishes_the_job(
    cluster: TestCluster, namespace: str, operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    operator.start(operator_kubeconfig, flags(namespace))
    service = apply_and_wait_ready(cluster, separate_checkout(namespace))
    uid = service["metadata"]["uid"]
    operator.stop()
    delete_service(cluster, namespace)
    # What payguard had done when it died: the controls of one workload detached and marked, with the
    # very patches payguard sends, the other three workloads' still owned.
    service_ref = f"PaymentService {namespace}/checkout (uid {uid})"
    for kind, (group, version, plural) in CONTROL_KINDS.items():
        child = get_control(cluster, kind, namespace, "checkout-api-gateway")
        assert child is not None
        operations = detach(child, service_uid=uid, service_ref=service_ref, now=datetime.now(UTC))
        custom(cluster).patch_namespaced_custom_object(
            group,
            version,
            namespace,
            plural,
            "checkout-api-gateway",
            operations,
            _content_type="application/json-patch+json",
        )
        done = get_control(cluster, kind, namespace, "checkout-api-gateway")
        assert done is not None and not done["metadata"].get("ownerReferences"), (kind, done)

    uids = control_uids(cluster, namespace)

    operator.start(operator_kubeconfig, flags(namespace))

    eventually(lambda: service_gone(cluster, namespace), what="the PaymentService to be released")
    assert_retained(cluster, namespace, uid)
    assert control_uids(cluster, namespace) == uids
    [retained] = events(cluster, namespace, "Retained")
    # The restart finished the other three workloads; the first was already done.
    assert "NetworkPolicy/checkout-order-service" in retained.note
    assert "checkout-api-gateway" not in retained.note, retained.note


def active_gauge(port: int, namespace: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = rf'^payguard_active_exceptions\{{namespace="{namespace}",payment_service="checkout"\}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_exceptions_that_end_or_are_deleted_while_payguard_is_down_are_removed_when_it_is_back(
    cluster: TestCluster, namespace: str, operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    port = free_port()
    operator.start(operator_kubeconfig, flags(namespace, port))
    apply_and_wait_ready(cluster, separate_checkout(namespace))
    before = controls(cluster, namespace)
    create(cluster, exception(namespace, requestedBy=my_username(cluster), duration="1m"))
    egress = {"egress": {"cidr": "198.51.100.0/24", "ports": [443]}}
    deleted = exception(namespace, requestedBy=my_username(cluster), allow=egress, duration="2h")
    deleted["metadata"]["name"] = "incident-4712"
    create(cluster, deleted)
    listed = eventually(
        lambda: len(status_exceptions(cluster, namespace)) == 2 and status_exceptions(cluster, namespace),
        what="status to list both exceptions",
    )
    widened = controls(cluster, namespace)
    assert {key for key in before if before[key] != widened[key]} == {
        ("AuthorizationPolicy", TARGET),
        ("NetworkPolicy", TARGET),
    }
    assert eventually(lambda: active_gauge(port, namespace) == 2, what="gauge 2")
    [one_minute] = [entry for entry in listed if entry["name"] == "incident-4711"]
    ends = datetime.strptime(one_minute["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    operator.stop()

    custom(cluster).delete_namespaced_custom_object(
        "payguard.dev", "v1alpha1", namespace, EXCEPTIONS, "incident-4712"
    )
    eventually(lambda: datetime.now(UTC) > ends, timeout=90, what="the 1-minute exception to end")
    # Nothing but payguard removes an allowance: while it is down the controls stay as they were (the
    # README says so, and PayguardOperatorDown alerts).
    assert controls(cluster, namespace) == widened

    operator.start(operator_kubeconfig, flags(namespace, port))

    eventually(lambda: controls(cluster, namespace) == before, what="both allowances to be removed")
    eventually(lambda: status_exceptions(cluster, namespace) == [], what="status to drop both exceptions")
    notes = eventually(
        lambda: (
            len(events(cluster, namespace, "ExceptionExpired")) == 2
            and sorted(e.note for e in events(cluster, namespace, "ExceptionExpired"))
        ),
        what="two ExceptionExpired Events",
    )
    assert notes[0].startswith(f"Exception incident-4711 expired at {one_minute['expiresAt']}; ")
    assert notes[1].startswith("Exception incident-4712 was deleted; ")
    assert eventually(lambda: active_gauge(port, namespace) == 0, what="gauge back to 0")
    # The recorded exception itself stays: it is the audit trail, and payguard never writes it.
    assert custom(cluster).get_namespaced_custom_object(
        "payguard.dev", "v1alpha1", namespace, EXCEPTIONS, "incident-4711"
    )
