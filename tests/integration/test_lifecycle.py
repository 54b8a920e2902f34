"""The PaymentService lifecycle on a real API server with its garbage collector: deleting a PaymentService
never opens its workloads (deletionPolicy Retain), a successor adopts the controls in place, and
deletionPolicy Delete removes them, announced. payguard runs in-process under its chart RBAC."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from test_reconcile import (
    KINDS,
    WORKLOADS,
    apply_and_wait_ready,
    checkout,
    custom,
    get_child,
    get_service,
    resource_versions,
)

from conftest import OperatorLog
from kube import EventView, TestCluster, list_events
from operator_harness import eventually
from payguard.settings import RunSettings

pytestmark = pytest.mark.usefixtures("payguard_operator")

GROUP, VERSION, PLURAL = "payguard.dev", "v1alpha1", "paymentservices"
FINALIZER = "payguard.dev/deletion-policy"


def delete_service(cluster: TestCluster, namespace: str, name: str = "checkout") -> None:
    custom(cluster).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def service_gone(cluster: TestCluster, namespace: str, name: str = "checkout") -> bool:
    try:
        get_service(cluster, namespace, name)
    except ApiException as error:
        return error.status == 404
    return False


def events(cluster: TestCluster, namespace: str, reason: str) -> list[EventView]:
    items = list_events(cluster, namespace)
    return [e for e in items if e.reason == reason and e.reporting_controller == "payguard.dev/operator"]


def canary_owned_by(cluster: TestCluster, namespace: str, service: dict[str, Any]) -> None:
    """A ConfigMap owned by the PaymentService: once the garbage collector removes it, it has acted on the
    PaymentService's deletion, so whatever it left in place it will leave in place."""
    metadata = service["metadata"]
    owner = client.V1OwnerReference(
        api_version=f"{GROUP}/{VERSION}", kind="PaymentService", name=metadata["name"], uid=metadata["uid"]
    )
    client.CoreV1Api(cluster.api_client).create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="gc-canary", owner_references=[owner])),
    )


def canary_collected(cluster: TestCluster, namespace: str) -> bool:
    try:
        client.CoreV1Api(cluster.api_client).read_namespaced_config_map("gc-canary", namespace)
    except ApiException as error:
        return error.status == 404
    return False


@contextmanager
def network_policy_watch(cluster: TestCluster, namespace: str) -> Iterator[list[tuple[str, str, str]]]:
    """Every NetworkPolicy event in the namespace from now on, as (type, name, resourceVersion). A watch the
    connection drops resumes from the last resourceVersion it saw, so no event falls in between; one that
    cannot resume (410) is recorded as BROKEN, because the events in the gap are unknown."""
    api = client.NetworkingV1Api(cluster.api_client)
    last = api.list_namespaced_network_policy(namespace).metadata.resource_version
    seen: list[tuple[str, str, str]] = []
    stop = threading.Event()
    streams: list[watch.Watch] = []

    def follow() -> None:
        nonlocal last
        while not stop.is_set():
            stream = watch.Watch()
            streams.append(stream)
            try:
                for event in stream.stream(
                    api.list_namespaced_network_policy, namespace, resource_version=last, timeout_seconds=60
                ):
                    obj = event["object"]
                    seen.append((event["type"], obj.metadata.name, obj.metadata.resource_version))
                    last = obj.metadata.resource_version
            except ApiException as error:  # 410 and the like: the gap cannot be filled
                seen.append(("BROKEN", str(error), ""))
                return
            except Exception:  # the connection ended: resume from `last` on a new one
                continue

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for stream in streams:
            stream.stop()


def test_retain_keeps_every_control_detached_and_marked_and_a_successor_adopts_them_without_a_gap(
    cluster: TestCluster, namespace: str, operator_log: OperatorLog
) -> None:
    service = apply_and_wait_ready(cluster, checkout(namespace))
    assert FINALIZER in service["metadata"]["finalizers"]
    canary_owned_by(cluster, namespace, service)
    names = [f"checkout-{workload}" for workload in WORKLOADS]
    uids = {
        (kind, name): get_child(cluster, kind, namespace, name)["metadata"]["uid"]  # type: ignore[index]
        for name in names
        for kind in KINDS
    }

    with network_policy_watch(cluster, namespace) as seen:
        delete_service(cluster, namespace)
        eventually(lambda: service_gone(cluster, namespace), what="the PaymentService to be released")
        eventually(lambda: canary_collected(cluster, namespace), what="the garbage collector to act")

        for name in names:
            for kind in KINDS:
                child = get_child(cluster, kind, namespace, name)
                assert child is not None, f"{kind} {name} was removed"
                metadata = child["metadata"]
                assert not metadata.get("ownerReferences"), f"{kind} {name} still has an owner"
                assert metadata["labels"]["payguard.dev/retained"] == "true"
                assert metadata["annotations"]["payguard.dev/retained-from"].startswith(
                    f"PaymentService {namespace}/checkout (uid {service['metadata']['uid']})"
                )
                assert metadata["annotations"]["payguard.dev/retained-at"]
        [retained] = events(cluster, namespace, "Retained")
        assert "NetworkPolicy/checkout-order-service" in retained.note
        assert any(f"Retained PaymentService {namespace}/checkout" in line for line in operator_log.lines)
        before = {
            (kind, name): get_child(cluster, kind, namespace, name)["metadata"]["resourceVersion"]  # type: ignore[index]
            for name in names
            for kind in KINDS
        }

        successor = apply_and_wait_ready(cluster, checkout(namespace))

        uid = successor["metadata"]["uid"]
        assert uid != service["metadata"]["uid"]
        for name in names:
            for kind in KINDS:
                child = get_child(cluster, kind, namespace, name)
                assert child is not None
                [owner] = child["metadata"]["ownerReferences"]
                assert (owner["uid"], owner["controller"]) == (uid, True)
                assert "payguard.dev/retained" not in child["metadata"]["labels"]
                assert child["metadata"]["uid"] == uids[(kind, name)], f"{kind} {name} was recreated"
                # One write: the adoption. Nothing else moved the object.
                assert int(child["metadata"]["resourceVersion"]) > int(before[(kind, name)])
        assert events(cluster, namespace, "Adopted")

    # Through the whole switch no NetworkPolicy was ever deleted, and each was written exactly twice:
    # detached, then adopted.
    assert [event for event in seen if event[0] in ("DELETED", "BROKEN")] == []
    assert sorted(name for kind, name, _ in seen if kind == "MODIFIED") == sorted(names * 2)


def test_an_adopting_service_writes_nothing_more_once_settled(
    cluster: TestCluster, namespace: str, payguard_operator: RunSettings
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    delete_service(cluster, namespace)
    eventually(lambda: service_gone(cluster, namespace), what="the PaymentService to be released")
    apply_and_wait_ready(cluster, checkout(namespace))
    time.sleep(payguard_operator.resync_seconds + 1)  # let the passes triggered by our own writes settle
    before = resource_versions(cluster, namespace)

    time.sleep(payguard_operator.resync_seconds * 2 + 1)  # at least two full resyncs

    assert resource_versions(cluster, namespace) == before


def test_delete_policy_removes_the_controls_and_announces_it(
    cluster: TestCluster, namespace: str, operator_log: OperatorLog
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace, deletionPolicy="Delete"))

    delete_service(cluster, namespace)

    eventually(lambda: service_gone(cluster, namespace), what="the PaymentService to be released")
    for workload in WORKLOADS:
        for kind in KINDS:
            eventually(
                lambda kind=kind, workload=workload: (
                    get_child(cluster, kind, namespace, f"checkout-{workload}") is None
                ),
                what=f"{kind} checkout-{workload} deleted",
            )
    [deleted] = events(cluster, namespace, "Deleted")
    assert deleted.type == "Warning"
    assert "deletionPolicy Delete" in deleted.note
    assert any(f"Deleted PaymentService {namespace}/checkout" in line for line in operator_log.lines)
