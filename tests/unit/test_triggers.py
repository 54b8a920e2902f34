"""Triggers: which known PaymentServices a watch event wakes, read from a real ObjectCache."""

from __future__ import annotations

from typing import Any

from payguard.cache import ObjectCache
from payguard.kinds import (
    AUTHORIZATION_POLICIES,
    CERTIFICATE_REQUESTS,
    CERTIFICATES,
    CLUSTER_ISSUERS,
    ISSUERS,
    NETWORK_POLICIES,
    PAYMENT_SERVICE_EXCEPTIONS,
    PAYMENT_SERVICES,
    PEER_AUTHENTICATIONS,
)
from payguard.triggers import affected_services, known_services

MESH_ROOT = "istio-system"
MANAGED = {"app.kubernetes.io/managed-by": "payguard"}


# --- builders --------------------------------------------------------------------------------------------


def obj(kind: str, name: str, namespace: str | None = None, **metadata: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **metadata}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"kind": kind, "metadata": meta}


def child_of(service: str, kind: str, name: str, namespace: str) -> dict[str, Any]:
    labels = {**MANAGED, "payguard.dev/payment-service": service, "payguard.dev/workload": "api"}
    return obj(kind, name, namespace, labels=labels)


def fleet() -> ObjectCache:
    """Three services in two namespaces, listed out of order, and checkout's Certificate."""
    cache = ObjectCache()
    for namespace, name in (("payments", "refunds"), ("ledger", "book"), ("payments", "checkout")):
        cache.put(PAYMENT_SERVICES.kind, obj(PAYMENT_SERVICES.kind, name, namespace, uid=f"{name}-uid"))
    cache.put(CERTIFICATES.kind, child_of("checkout", CERTIFICATES.kind, "checkout-api", "payments"))
    return cache


def certificate_request(certificate_name: str, namespace: str = "payments") -> dict[str, Any]:
    annotations = {"cert-manager.io/certificate-name": certificate_name}
    return obj(CERTIFICATE_REQUESTS.kind, f"{certificate_name}-1", namespace, annotations=annotations)


EVERY_SERVICE = [("ledger", "book"), ("payments", "checkout"), ("payments", "refunds")]


# --- our own children ------------------------------------------------------------------------------------


def test_our_own_child_wakes_exactly_its_parent() -> None:
    child = child_of("refunds", PEER_AUTHENTICATIONS.kind, "refunds-api", "payments")

    woken = affected_services(PEER_AUTHENTICATIONS, child, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == [("payments", "refunds")]


def test_an_exception_wakes_exactly_the_payment_service_it_names() -> None:
    exception = obj(PAYMENT_SERVICE_EXCEPTIONS.kind, "incident-1", "payments")
    exception["spec"] = {"paymentService": "refunds", "workload": "api"}

    woken = affected_services(PAYMENT_SERVICE_EXCEPTIONS, exception, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == [("payments", "refunds")]


def test_a_child_labelled_for_a_service_but_not_managed_by_payguard_is_treated_as_foreign() -> None:
    policy = obj(
        NETWORK_POLICIES.kind,
        "refunds-api",
        "payments",
        labels={"payguard.dev/payment-service": "refunds"},
    )

    woken = affected_services(NETWORK_POLICIES, policy, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == [("payments", "checkout"), ("payments", "refunds")]


# --- certificate requests --------------------------------------------------------------------------------


def test_a_certificate_request_wakes_the_service_owning_its_certificate() -> None:
    request = certificate_request("checkout-api")

    woken = affected_services(CERTIFICATE_REQUESTS, request, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == [("payments", "checkout")]


def test_a_certificate_request_for_an_unknown_certificate_wakes_nothing() -> None:
    request = certificate_request("someone-elses-cert")

    woken = affected_services(CERTIFICATE_REQUESTS, request, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == []


def test_a_certificate_request_looks_for_its_certificate_in_its_own_namespace_only() -> None:
    request = certificate_request("checkout-api", namespace="ledger")

    woken = affected_services(CERTIFICATE_REQUESTS, request, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == []


def test_a_certificate_request_without_the_annotation_wakes_nothing() -> None:
    request = obj(CERTIFICATE_REQUESTS.kind, "checkout-api-1", "payments")

    woken = affected_services(CERTIFICATE_REQUESTS, request, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == []


# --- foreign objects -------------------------------------------------------------------------------------


def test_a_foreign_network_policy_wakes_every_service_of_its_namespace_only() -> None:
    policy = obj(NETWORK_POLICIES.kind, "allow-all", "payments", labels={"team": "platform"})

    woken = affected_services(NETWORK_POLICIES, policy, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == [("payments", "checkout"), ("payments", "refunds")]


def test_a_foreign_object_in_a_namespace_without_services_wakes_nothing() -> None:
    policy = obj(AUTHORIZATION_POLICIES.kind, "allow-all", "monitoring")

    woken = affected_services(AUTHORIZATION_POLICIES, policy, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == []


def test_an_object_in_the_mesh_root_namespace_wakes_every_known_service() -> None:
    policy = obj(PEER_AUTHENTICATIONS.kind, "default", MESH_ROOT)

    woken = affected_services(PEER_AUTHENTICATIONS, policy, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == EVERY_SERVICE


def test_the_mesh_root_namespace_is_the_one_passed_in() -> None:
    policy = obj(PEER_AUTHENTICATIONS.kind, "default", "istio-system")

    woken = affected_services(PEER_AUTHENTICATIONS, policy, fleet(), mesh_root_namespace="mesh-root")

    assert woken == []


def test_a_cluster_issuer_wakes_every_known_service() -> None:
    issuer = obj(CLUSTER_ISSUERS.kind, "payments-ca")

    woken = affected_services(CLUSTER_ISSUERS, issuer, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == EVERY_SERVICE


def test_a_namespaced_issuer_wakes_the_services_of_its_namespace() -> None:
    issuer = obj(ISSUERS.kind, "ledger-ca", "ledger")

    woken = affected_services(ISSUERS, issuer, fleet(), mesh_root_namespace=MESH_ROOT)

    assert woken == [("ledger", "book")]


# --- known services --------------------------------------------------------------------------------------


def test_known_services_are_every_cached_payment_service_sorted() -> None:
    assert known_services(fleet()) == EVERY_SERVICE


def test_known_services_of_one_namespace_are_only_that_namespaces_sorted() -> None:
    assert known_services(fleet(), namespace="payments") == [
        ("payments", "checkout"),
        ("payments", "refunds"),
    ]


def test_a_removed_service_is_no_longer_known() -> None:
    cache = fleet()
    cache.remove(PAYMENT_SERVICES.kind, namespace="payments", name="checkout")

    assert known_services(cache) == [("ledger", "book"), ("payments", "refunds")]
