"""cluster.Cluster against the real API server: every refusal reaches the caller as the same `ApiError`
(status, the server's one-line message naming the field), the refusals payguard tolerates stay quiet,
and each request still does what it says (apply, patch, status, Event series, dry-run, read)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import client

from kube import TestCluster
from localcluster import free_port
from operator_harness import SEPARATE_LABEL
from payguard.api import ApiError
from payguard.cluster import Cluster, load_api_client
from payguard.kinds import AUTHORIZATION_POLICIES, FIELD_MANAGER, PAYMENT_SERVICES


@pytest.fixture
def cluster_api(cluster: TestCluster) -> Iterator[Cluster]:
    api_client = load_api_client(str(cluster.kubeconfig))
    yield Cluster(api_client)
    api_client.close()


def policy(namespace: str, *, action: str = "ALLOW") -> dict[str, Any]:
    return {
        "apiVersion": AUTHORIZATION_POLICIES.api_version,
        "kind": AUTHORIZATION_POLICIES.kind,
        "metadata": {
            "name": "orders",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "payguard"},
        },
        "spec": {"selector": {"matchLabels": {"app": "orders"}}, "action": action, "rules": [{}]},
    }


def created(cluster_api: Cluster, namespace: str) -> dict[str, Any]:
    cluster_api.apply(policy(namespace))
    live = cluster_api.read(AUTHORIZATION_POLICIES, namespace=namespace, name="orders")
    assert live is not None
    return live


def test_apply_writes_under_payguards_manager_and_returns_the_live_object(
    cluster_api: Cluster, namespace: str
) -> None:
    """Also when it creates the object (201), whose body the kubernetes client (29 on) dropped."""
    live = cluster_api.apply(policy(namespace))
    assert live["metadata"]["uid"] and live["spec"]["action"] == "ALLOW"
    managers = [entry["manager"] for entry in live["metadata"]["managedFields"]]
    assert managers == [FIELD_MANAGER]


def test_apply_refused_by_the_schema_names_the_field(cluster_api: Cluster, namespace: str) -> None:
    with pytest.raises(ApiError) as refused:
        cluster_api.apply(policy(namespace, action="MAYBE"))
    assert refused.value.status == 422
    assert "spec.action" in str(refused.value)
    assert str(refused.value).startswith(f"Apply AuthorizationPolicy {namespace}/orders failed (422): ")


def test_a_json_patch_against_a_stale_resource_version_is_refused(
    cluster_api: Cluster, namespace: str
) -> None:
    live = created(cluster_api, namespace)
    operations = [{"op": "add", "path": "/metadata/labels/extra", "value": "x"}]
    with pytest.raises(ApiError) as refused:
        cluster_api.json_patch(
            kind="AuthorizationPolicy",
            namespace=namespace,
            name="orders",
            resource_version="1",
            operations=operations,
        )
    assert refused.value.status == 422
    assert str(refused.value) == (
        f"Patch AuthorizationPolicy {namespace}/orders failed (422): "
        "the server rejected our request due to an error in our request"
    )
    patched = cluster_api.json_patch(
        kind="AuthorizationPolicy",
        namespace=namespace,
        name="orders",
        resource_version=live["metadata"]["resourceVersion"],
        operations=operations,
    )
    assert patched["metadata"]["labels"]["extra"] == "x"


def test_removing_fields_is_guarded_and_removes_them(cluster_api: Cluster, namespace: str) -> None:
    live = created(cluster_api, namespace)
    with pytest.raises(ApiError) as refused:
        cluster_api.remove_fields(
            kind="AuthorizationPolicy",
            namespace=namespace,
            name="orders",
            resource_version="1",
            fields=(("spec", "rules"),),
        )
    assert refused.value.status == 422
    cluster_api.remove_fields(
        kind="AuthorizationPolicy",
        namespace=namespace,
        name="orders",
        resource_version=live["metadata"]["resourceVersion"],
        fields=(("spec", "rules"),),
    )
    after = cluster_api.read(AUTHORIZATION_POLICIES, namespace=namespace, name="orders")
    assert after is not None and "rules" not in after["spec"]


def test_delete_leaves_a_newer_object_and_tolerates_a_missing_one(
    cluster_api: Cluster, namespace: str
) -> None:
    live = created(cluster_api, namespace)
    cluster_api.delete(
        kind="AuthorizationPolicy", namespace=namespace, name="orders", uid="not-its-uid"
    )  # 409
    assert cluster_api.read(AUTHORIZATION_POLICIES, namespace=namespace, name="orders") is not None
    cluster_api.delete(
        kind="AuthorizationPolicy", namespace=namespace, name="orders", uid=live["metadata"]["uid"]
    )
    assert cluster_api.read(AUTHORIZATION_POLICIES, namespace=namespace, name="orders") is None  # 404 is None
    cluster_api.delete(
        kind="AuthorizationPolicy", namespace=namespace, name="orders", uid=live["metadata"]["uid"]
    )


def test_status_of_a_missing_payment_service_is_a_404_naming_it(cluster_api: Cluster, namespace: str) -> None:
    with pytest.raises(ApiError) as refused:
        cluster_api.patch_status(namespace=namespace, name="absent", status={"observedGeneration": 1})
    assert refused.value.status == 404
    assert str(refused.value) == (
        f"Patch status of PaymentService {namespace}/absent failed (404): "
        'paymentservices.payguard.dev "absent" not found'
    )


def test_status_patch_merges_into_the_status_subresource(
    cluster: TestCluster, cluster_api: Cluster, namespace: str
) -> None:
    service = {
        "apiVersion": PAYMENT_SERVICES.api_version,
        "kind": PAYMENT_SERVICES.kind,
        # Kept from the session's operator, whose own status patches would race this test's.
        "metadata": {"name": "checkout", "namespace": namespace, "labels": {SEPARATE_LABEL: "separate"}},
        "spec": {
            "workloads": [{"name": "api", "selector": {"app": "api"}, "serviceAccount": "api"}],
            "certificates": {"issuerRef": {"name": "payments-ca", "kind": "ClusterIssuer"}},
        },
    }
    cluster.apply(copy.deepcopy(service), namespace=namespace)
    live = cluster_api.patch_status(namespace=namespace, name="checkout", status={"observedGeneration": 7})
    assert live["status"]["observedGeneration"] == 7
    with pytest.raises(ApiError) as refused:
        cluster_api.patch_status(namespace=namespace, name="checkout", status={"observedGeneration": "seven"})
    assert refused.value.status == 422 and "status.observedGeneration" in str(refused.value)


def test_a_repeated_event_counts_up_the_series_of_the_first(
    cluster: TestCluster, cluster_api: Cluster, namespace: str
) -> None:
    regarding = {"metadata": {"name": "checkout", "namespace": namespace, "uid": "u-1"}}
    for _ in range(3):
        cluster_api.post_event(
            regarding=regarding, warning=True, reason="Drift", action="Repair", note="again"
        )
    events = client.CustomObjectsApi(cluster.api_client).list_namespaced_custom_object(
        "events.k8s.io", "v1", namespace, "events"
    )["items"]
    assert len(events) == 1
    assert events[0]["series"]["count"] == 3 and events[0]["reason"] == "Drift"


def test_preview_apply_answers_a_dry_run_creation_and_stores_nothing(
    cluster_api: Cluster, namespace: str
) -> None:
    preview = cluster_api.preview_apply(policy(namespace))
    assert preview["spec"]["action"] == "ALLOW"
    assert cluster_api.read(AUTHORIZATION_POLICIES, namespace=namespace, name="orders") is None


def test_listing_a_kind_the_server_does_not_serve_is_a_404(cluster_api: Cluster, namespace: str) -> None:
    absent = type(AUTHORIZATION_POLICIES)("example.invalid", "v1", "things", "Thing")
    with pytest.raises(ApiError) as refused:
        cluster_api.list_with_version(absent, namespace=namespace)
    assert refused.value.status == 404 and "List things.example.invalid failed (404)" in str(refused.value)


def test_an_unreachable_server(cluster: TestCluster) -> None:
    """Lists say so as an ApiError; writes raise urllib3's error, as the kubernetes client let them."""
    api_client = load_api_client(str(cluster.kubeconfig))
    api_client.configuration.host = f"https://127.0.0.1:{free_port()}"
    api_client.rest_client.pool_manager.connection_pool_kw["retries"] = False
    dead = Cluster(api_client)
    with pytest.raises(ApiError) as unreachable:
        dead.list_with_version(PAYMENT_SERVICES, namespace="default")
    assert unreachable.value.status == 0 and "API server unreachable" in str(unreachable.value)
    with pytest.raises(urllib3.exceptions.HTTPError):
        dead.apply(policy("default"))
