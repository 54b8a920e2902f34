"""Posture: effective mTLS resolved the way istiod resolves it, and what widens access to a workload."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from payguard.kinds import MANAGED_BY_LABEL, SERVICE_LABEL
from payguard.model import PaymentService
from payguard.posture.mtls import MTLSPosture, effective_mtls
from payguard.posture.objects import is_owned_by, selector_matches
from payguard.posture.privilege import Widening, least_privilege_findings
from payguard.spec import parse_payment_service

SERVICE_UID = "0b5c6d1e-0000-4000-8000-000000000001"
OTHER_UID = "0b5c6d1e-0000-4000-8000-000000000002"
ORDER_LABELS = {"app": "order"}
GATEWAY_LABELS = {"app": "gateway"}
OLD = "2024-01-01T00:00:00Z"
NEW = "2024-06-01T00:00:00Z"


# --- builders --------------------------------------------------------------------------------------------


def checkout(
    *, name: str = "checkout", namespace: str = "payments", uid: str = SERVICE_UID
) -> PaymentService:
    """Two workloads, order-service first: it declares 8443 and 9090, api-gateway 8443."""
    return parse_payment_service(
        {
            "apiVersion": "payguard.dev/v1alpha1",
            "kind": "PaymentService",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": {
                "workloads": [
                    {
                        "name": "order-service",
                        "selector": ORDER_LABELS,
                        "serviceAccount": "order-service",
                        "ports": [{"name": "https", "port": 8443}, {"name": "http-metrics", "port": 9090}],
                    },
                    {
                        "name": "api-gateway",
                        "selector": GATEWAY_LABELS,
                        "serviceAccount": "api-gateway",
                        "ports": [{"name": "https", "port": 8443}],
                    },
                ],
                "certificates": {"issuerRef": {"name": "payments-ca"}},
            },
        }
    )


def single_workload_service(
    *, name: str, namespace: str, service_account: str, uid: str = OTHER_UID
) -> PaymentService:
    return parse_payment_service(
        {
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": {
                "workloads": [
                    {
                        "name": "worker",
                        "selector": {"app": f"{name}-worker"},
                        "serviceAccount": service_account,
                    }
                ],
                "certificates": {"issuerRef": {"name": "payments-ca"}},
            },
        }
    )


def metadata(
    name: str,
    namespace: str,
    *,
    created: str | None = OLD,
    owner_uid: str | None = None,
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if created is not None:
        meta["creationTimestamp"] = created
    if owner_uid is not None:
        meta["labels"] = {MANAGED_BY_LABEL: "payguard", SERVICE_LABEL: "checkout"}
        meta["ownerReferences"] = [
            {
                "apiVersion": "payguard.dev/v1alpha1",
                "kind": "PaymentService",
                "name": "checkout",
                "uid": owner_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    if annotations is not None:
        meta["annotations"] = annotations
    if deleting:
        meta["deletionTimestamp"] = NEW
    return meta


def peer_authentication(
    name: str,
    *,
    namespace: str = "payments",
    selector: dict[str, str] | None = None,
    mode: str | None = None,
    port_modes: dict[Any, str] | None = None,
    created: str | None = OLD,
    owner_uid: str | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    if mode is not None:
        spec["mtls"] = {"mode": mode}
    if port_modes is not None:
        spec["portLevelMtls"] = {port: {"mode": port_mode} for port, port_mode in port_modes.items()}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": metadata(name, namespace, created=created, owner_uid=owner_uid, deleting=deleting),
        "spec": spec,
    }


def managed_strict(workload: str, labels: dict[str, str], *, created: str = NEW) -> dict[str, Any]:
    """The PeerAuthentication payguard renders for a workload."""
    return peer_authentication(
        f"checkout-{workload}", selector=labels, mode="STRICT", created=created, owner_uid=SERVICE_UID
    )


def network_policy(
    name: str,
    *,
    namespace: str = "payments",
    pod_selector: dict[str, Any] | None = None,
    policy_types: list[str] | None = None,
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
    owner_uid: str | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {} if pod_selector is None else pod_selector}
    if policy_types is not None:
        spec["policyTypes"] = policy_types
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, namespace, owner_uid=owner_uid, deleting=deleting),
        "spec": spec,
    }


def authorization_policy(
    name: str,
    *,
    namespace: str = "payments",
    selector: dict[str, str] | None = None,
    action: str | None = None,
    rules: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    target_refs: list[dict[str, str]] | None = None,
    owner_uid: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    if action is not None:
        spec["action"] = action
    if rules is not None:
        spec["rules"] = rules
    if target_refs is not None:
        spec["targetRefs"] = target_refs
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata(name, namespace, owner_uid=owner_uid, annotations=annotations),
        "spec": spec,
    }


def mtls_of(workload: str, *policies: dict[str, Any], service: PaymentService | None = None) -> MTLSPosture:
    postures = effective_mtls(service or checkout(), policies)
    return next(posture for posture in postures if posture.workload == workload)


def widenings(
    *,
    network_policies: tuple[dict[str, Any], ...] = (),
    authorization_policies: tuple[dict[str, Any], ...] = (),
    other_services: tuple[PaymentService, ...] = (),
    service: PaymentService | None = None,
) -> tuple[Widening, ...]:
    return least_privilege_findings(
        service or checkout(),
        network_policies=network_policies,
        authorization_policies=authorization_policies,
        other_services=other_services,
    )


ALLOW_ALL_INGRESS = network_policy("allow-all", policy_types=["Ingress"], ingress=[{}])


# --- ownership and selection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "owned"),
    [
        pytest.param(
            {"metadata": metadata("x", "payments", owner_uid=SERVICE_UID)}, True, id="label-and-controller"
        ),
        pytest.param({"metadata": metadata("x", "payments", owner_uid=OTHER_UID)}, False, id="another-owner"),
        pytest.param({"metadata": metadata("x", "payments")}, False, id="no-label-no-owner"),
        pytest.param(
            {
                "metadata": {
                    **metadata("x", "payments", owner_uid=SERVICE_UID),
                    "labels": {MANAGED_BY_LABEL: "helm"},
                }
            },
            False,
            id="owner-reference-without-payguard-label",
        ),
        pytest.param(
            {
                "metadata": {
                    **metadata("x", "payments", owner_uid=SERVICE_UID),
                    "ownerReferences": [{"kind": "PaymentService", "uid": SERVICE_UID, "controller": False}],
                }
            },
            False,
            id="owner-reference-that-is-not-the-controller",
        ),
        pytest.param({}, False, id="no-metadata"),
    ],
)
def test_ownership_needs_the_payguard_label_and_a_controller_reference(
    obj: dict[str, Any], owned: bool
) -> None:
    assert is_owned_by(obj, service_uid=SERVICE_UID) is owned


def test_a_service_without_uid_owns_nothing() -> None:
    assert is_owned_by({"metadata": metadata("x", "payments", owner_uid="")}, service_uid="") is False


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        (None, {"app": "order"}, True),
        ({}, {}, True),
        ({"matchLabels": {"app": "order"}}, {"app": "order", "tier": "api"}, True),
        ({"matchLabels": {"app": "order", "tier": "db"}}, {"app": "order", "tier": "api"}, False),
        ({"matchLabels": {"app": "order"}}, {}, False),
        (
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["order", "x"]}]},
            {"app": "order"},
            True,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]}, {"app": "order"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["order"]}]}, {}, False),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["x"]}]},
            {"app": "order"},
            True,
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["order"]}]},
            {"app": "order"},
            False,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["order"]}]}, {}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {"app": "order"}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {"tier": "api"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {"tier": "api"}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {"app": "order"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}, {"app": "2"}, False),
        (
            {
                "matchLabels": {"app": "order"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}],
            },
            {"app": "order", "tier": "api"},
            False,
        ),
    ],
)
def test_selector_matches_follows_label_selector_semantics(
    selector: dict[str, Any] | None, labels: dict[str, str], selected: bool
) -> None:
    assert selector_matches(selector, labels) is selected


# --- effective mTLS --------------------------------------------------------------------------------------


def test_no_peer_authentication_leaves_istio_default_permissive() -> None:
    posture = mtls_of("order-service")

    assert posture == MTLSPosture(
        workload="order-service",
        mode="PERMISSIVE",
        strict=False,
        decided_by=None,
        detail="no PeerAuthentication sets a mode, so Istio's default PERMISSIVE applies",
    )


def test_mesh_wide_strict_applies_when_nothing_else_does() -> None:
    posture = mtls_of(
        "order-service", peer_authentication("default", namespace="istio-system", mode="STRICT")
    )

    assert posture == MTLSPosture(
        workload="order-service",
        mode="STRICT",
        strict=True,
        decided_by="PeerAuthentication istio-system/default",
        detail="mTLS is STRICT by PeerAuthentication istio-system/default (mesh-wide)",
    )


def test_mesh_root_namespace_is_configurable() -> None:
    policy = peer_authentication("default", namespace="mesh-root", mode="STRICT")

    postures = effective_mtls(checkout(), [policy], mesh_root_namespace="mesh-root")

    assert [(posture.mode, posture.decided_by) for posture in postures] == [
        ("STRICT", "PeerAuthentication mesh-root/default"),
        ("STRICT", "PeerAuthentication mesh-root/default"),
    ]


def test_namespace_permissive_overrides_mesh_strict() -> None:
    posture = mtls_of(
        "order-service",
        peer_authentication("default", namespace="istio-system", mode="STRICT"),
        peer_authentication("legacy", mode="PERMISSIVE"),
    )

    assert (posture.mode, posture.strict, posture.decided_by, posture.detail) == (
        "PERMISSIVE",
        False,
        "PeerAuthentication payments/legacy",
        "mTLS is PERMISSIVE by PeerAuthentication payments/legacy (namespace-wide)",
    )


def test_namespace_permissive_is_overridden_by_managed_workload_strict() -> None:
    posture = mtls_of(
        "order-service",
        peer_authentication("legacy", mode="PERMISSIVE"),
        managed_strict("order-service", ORDER_LABELS),
    )

    assert posture == MTLSPosture(
        workload="order-service",
        mode="STRICT",
        strict=True,
        decided_by="PeerAuthentication payments/checkout-order-service",
        detail="mTLS is STRICT by PeerAuthentication payments/checkout-order-service (workload-specific)",
    )


def test_namespace_permissive_still_weakens_a_workload_without_its_own_policy() -> None:
    postures = effective_mtls(
        checkout(),
        [peer_authentication("legacy", mode="PERMISSIVE"), managed_strict("order-service", ORDER_LABELS)],
    )

    assert [(posture.workload, posture.mode, posture.decided_by) for posture in postures] == [
        ("order-service", "STRICT", "PeerAuthentication payments/checkout-order-service"),
        ("api-gateway", "PERMISSIVE", "PeerAuthentication payments/legacy"),
    ]


def test_older_permissive_workload_policy_weakens_strict() -> None:
    posture = mtls_of(
        "order-service",
        peer_authentication("legacy-order", selector=ORDER_LABELS, mode="PERMISSIVE", created=OLD),
        managed_strict("order-service", ORDER_LABELS, created=NEW),
    )

    assert posture == MTLSPosture(
        workload="order-service",
        mode="PERMISSIVE",
        strict=False,
        decided_by="PeerAuthentication payments/legacy-order",
        detail=(
            "mTLS is PERMISSIVE by PeerAuthentication payments/legacy-order (workload-specific; "
            "Istio uses the oldest matching policy and ignores payments/checkout-order-service)"
        ),
    )


def test_younger_permissive_workload_policy_is_ignored() -> None:
    posture = mtls_of(
        "order-service",
        managed_strict("order-service", ORDER_LABELS, created=OLD),
        peer_authentication("late-order", selector=ORDER_LABELS, mode="PERMISSIVE", created=NEW),
    )

    assert (posture.mode, posture.decided_by) == (
        "STRICT",
        "PeerAuthentication payments/checkout-order-service",
    )
    assert posture.detail.endswith("ignores payments/late-order)")


def test_equally_old_workload_policies_are_decided_by_name() -> None:
    posture = mtls_of(
        "order-service",
        peer_authentication("b-strict", selector=ORDER_LABELS, mode="STRICT", created=OLD),
        peer_authentication("a-permissive", selector=ORDER_LABELS, mode="PERMISSIVE", created=OLD),
    )

    assert (posture.mode, posture.decided_by) == ("PERMISSIVE", "PeerAuthentication payments/a-permissive")


def test_a_policy_without_creation_time_counts_as_the_youngest() -> None:
    posture = mtls_of(
        "order-service",
        peer_authentication("unsaved", selector=ORDER_LABELS, mode="DISABLE", created=None),
        managed_strict("order-service", ORDER_LABELS, created=NEW),
    )

    assert (posture.mode, posture.decided_by) == (
        "STRICT",
        "PeerAuthentication payments/checkout-order-service",
    )


def test_oldest_namespace_wide_policy_wins() -> None:
    posture = mtls_of(
        "order-service",
        peer_authentication("strict-new", mode="STRICT", created=NEW),
        peer_authentication("permissive-old", mode="PERMISSIVE", created=OLD),
    )

    assert (posture.mode, posture.decided_by) == ("PERMISSIVE", "PeerAuthentication payments/permissive-old")


def test_unset_workload_policy_inherits_the_namespace_mode() -> None:
    posture = mtls_of(
        "order-service",
        peer_authentication("default", mode="DISABLE"),
        peer_authentication("order", selector=ORDER_LABELS, mode="UNSET"),
    )

    assert (posture.mode, posture.decided_by) == ("DISABLE", "PeerAuthentication payments/default")


def test_policies_that_set_no_mode_leave_the_default_and_name_nothing() -> None:
    posture = mtls_of(
        "order-service",
        peer_authentication("default", namespace="istio-system"),
        peer_authentication("order", selector=ORDER_LABELS, mode="UNSET"),
    )

    assert (posture.mode, posture.strict, posture.decided_by) == ("PERMISSIVE", False, None)


def test_port_level_permissive_override_names_the_policy() -> None:
    legacy = peer_authentication(
        "legacy", selector=ORDER_LABELS, mode="STRICT", port_modes={"8443": "PERMISSIVE"}, created=OLD
    )

    posture = mtls_of("order-service", legacy, managed_strict("order-service", ORDER_LABELS))

    assert posture == MTLSPosture(
        workload="order-service",
        mode="PERMISSIVE",
        strict=False,
        decided_by="PeerAuthentication payments/legacy",
        detail="port 8443 is PERMISSIVE by PeerAuthentication payments/legacy (portLevelMtls)",
    )


def test_the_weakest_port_level_override_is_reported() -> None:
    policy = peer_authentication(
        "order", selector=ORDER_LABELS, mode="STRICT", port_modes={9090: "DISABLE", 8443: "PERMISSIVE"}
    )

    posture = mtls_of("order-service", policy)

    assert (posture.mode, posture.detail) == (
        "DISABLE",
        "port 9090 is DISABLE by PeerAuthentication payments/order (portLevelMtls)",
    )


@pytest.mark.parametrize(
    ("port_modes", "expected_mode"),
    [
        pytest.param({"15021": "DISABLE"}, "STRICT", id="undeclared-port-is-ignored"),
        pytest.param({"8443": "UNSET"}, "STRICT", id="unset-port-inherits-workload-mode"),
        pytest.param({"8443": "STRICT", "9090": "STRICT"}, "STRICT", id="strict-ports-stay-strict"),
        pytest.param({8443: "DISABLE"}, "DISABLE", id="integer-port-keys-count"),
        pytest.param({"https": "DISABLE"}, "STRICT", id="non-numeric-port-keys-are-ignored"),
    ],
)
def test_port_level_overrides_apply_only_to_declared_ports_with_a_mode(
    port_modes: dict[Any, str], expected_mode: str
) -> None:
    policy = peer_authentication("order", selector=ORDER_LABELS, mode="STRICT", port_modes=port_modes)

    assert mtls_of("order-service", policy).mode == expected_mode


def test_a_port_no_weaker_than_the_workload_mode_leaves_the_workload_wide_source_named() -> None:
    posture = mtls_of(
        "order-service",
        peer_authentication("legacy", mode="PERMISSIVE"),
        peer_authentication("order", selector=ORDER_LABELS, mode="UNSET", port_modes={"8443": "PERMISSIVE"}),
    )

    assert (posture.mode, posture.decided_by, posture.detail) == (
        "PERMISSIVE",
        "PeerAuthentication payments/legacy",
        "mTLS is PERMISSIVE by PeerAuthentication payments/legacy (namespace-wide)",
    )


def test_port_level_overrides_of_a_namespace_wide_policy_are_ignored() -> None:
    policy = peer_authentication("default", mode="STRICT", port_modes={"8443": "DISABLE"})

    assert mtls_of("order-service", policy).mode == "STRICT"


def test_strict_ports_do_not_hide_a_permissive_workload_mode() -> None:
    policy = peer_authentication(
        "order", selector=ORDER_LABELS, mode="PERMISSIVE", port_modes={"8443": "STRICT", "9090": "STRICT"}
    )

    posture = mtls_of("order-service", policy)

    assert (posture.mode, posture.decided_by) == ("PERMISSIVE", "PeerAuthentication payments/order")


@pytest.mark.parametrize(
    "ignored",
    [
        pytest.param(
            peer_authentication("order", namespace="istio-system", selector=ORDER_LABELS, mode="DISABLE"),
            id="selector-policy-in-root-namespace",
        ),
        pytest.param(peer_authentication("default", namespace="other", mode="DISABLE"), id="other-namespace"),
        pytest.param(
            peer_authentication("gateway", selector=GATEWAY_LABELS, mode="DISABLE"),
            id="other-workload-labels",
        ),
        pytest.param(
            peer_authentication("wider", selector={"app": "order", "tier": "db"}, mode="DISABLE"),
            id="selector-needs-labels-the-pods-lack",
        ),
        pytest.param(
            peer_authentication("leaving", selector=ORDER_LABELS, mode="DISABLE", created=OLD, deleting=True),
            id="being-deleted",
        ),
    ],
)
def test_policies_that_do_not_reach_the_workload_leave_it_strict(ignored: dict[str, Any]) -> None:
    posture = mtls_of("order-service", ignored, managed_strict("order-service", ORDER_LABELS))

    assert (posture.mode, posture.decided_by) == (
        "STRICT",
        "PeerAuthentication payments/checkout-order-service",
    )


def test_a_selector_with_no_labels_is_namespace_wide() -> None:
    policy = peer_authentication("everyone", selector={}, mode="DISABLE")

    postures = effective_mtls(checkout(), [policy, managed_strict("order-service", ORDER_LABELS)])

    assert [(posture.workload, posture.mode) for posture in postures] == [
        ("order-service", "STRICT"),
        ("api-gateway", "DISABLE"),
    ]


# --- least privilege: NetworkPolicy ----------------------------------------------------------------------


def test_foreign_allow_all_network_policy_is_reported_by_name() -> None:
    assert widenings(network_policies=(ALLOW_ALL_INGRESS,)) == (
        Widening(
            workload="order-service",
            kind="NetworkPolicy",
            object_ref="NetworkPolicy payments/allow-all",
            reason="ForeignNetworkPolicy",
            detail="NetworkPolicy payments/allow-all allows ingress to order-service from any source",
        ),
        Widening(
            workload="api-gateway",
            kind="NetworkPolicy",
            object_ref="NetworkPolicy payments/allow-all",
            reason="ForeignNetworkPolicy",
            detail="NetworkPolicy payments/allow-all allows ingress to api-gateway from any source",
        ),
    )


@pytest.mark.parametrize(
    ("policy", "detail"),
    [
        pytest.param(
            network_policy("p", policy_types=["Ingress", "Egress"], ingress=[{}], egress=[{}]),
            "NetworkPolicy payments/p allows ingress to order-service from any source "
            "and egress from order-service to any destination",
            id="both-directions",
        ),
        pytest.param(
            network_policy("p", policy_types=["Egress"], egress=[{"to": [], "ports": [{"port": 443}]}]),
            "NetworkPolicy payments/p allows egress from order-service to any destination",
            id="egress-with-empty-to",
        ),
        pytest.param(
            network_policy("p", ingress=[{"from": [{"namespaceSelector": {}}]}]),
            "NetworkPolicy payments/p allows ingress to order-service from the sources its rules list",
            id="no-policy-types-means-ingress",
        ),
        pytest.param(
            network_policy("p", egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]),
            "NetworkPolicy payments/p allows egress from order-service to the destinations its rules list",
            id="no-policy-types-with-egress-rules-means-egress",
        ),
        pytest.param(
            network_policy("p", ingress=[{"from": [{"podSelector": {}}]}, {"ports": [{"port": 8443}]}]),
            "NetworkPolicy payments/p allows ingress to order-service from any source",
            id="one-rule-without-peers-opens-to-any-source",
        ),
    ],
)
def test_network_policy_detail_names_each_direction_it_opens(policy: dict[str, Any], detail: str) -> None:
    found = widenings(network_policies=(policy,), service=only_order_service())

    assert [widening.detail for widening in found] == [detail]


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(network_policy("deny-all", policy_types=["Ingress", "Egress"]), id="deny-all"),
        pytest.param(
            network_policy("deny-empty", policy_types=["Ingress"], ingress=[]), id="empty-rule-list"
        ),
        pytest.param(
            network_policy("egress-not-governed", policy_types=["Ingress"], egress=[{}]),
            id="egress-rules-without-egress-type",
        ),
        pytest.param(
            network_policy("ingress-not-governed", policy_types=["Egress"], ingress=[{}]),
            id="ingress-rules-without-ingress-type",
        ),
        pytest.param(
            network_policy("gateway-only", pod_selector={"matchLabels": GATEWAY_LABELS}, ingress=[{}]),
            id="selects-other-pods",
        ),
        pytest.param(
            network_policy(
                "not-order",
                pod_selector={"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["order"]}]},
                ingress=[{}],
            ),
            id="expression-excludes-the-pods",
        ),
        pytest.param(network_policy("elsewhere", namespace="other", ingress=[{}]), id="other-namespace"),
        pytest.param(network_policy("ours", ingress=[{}], owner_uid=SERVICE_UID), id="owned-by-this-service"),
        pytest.param(network_policy("leaving", ingress=[{}], deleting=True), id="being-deleted"),
    ],
)
def test_network_policies_that_add_nothing_to_the_workload_do_not_widen(policy: dict[str, Any]) -> None:
    assert widenings(network_policies=(policy,), service=only_order_service()) == ()


def test_network_policy_of_another_payment_service_is_foreign() -> None:
    policy = network_policy("refunds-worker", ingress=[{}], owner_uid=OTHER_UID)

    found = widenings(network_policies=(policy,), service=only_order_service())

    assert [(widening.object_ref, widening.reason) for widening in found] == [
        ("NetworkPolicy payments/refunds-worker", "ForeignNetworkPolicy")
    ]


# --- least privilege: AuthorizationPolicy ----------------------------------------------------------------


def test_foreign_allow_all_authorization_policy_is_reported_by_name() -> None:
    policy = authorization_policy("allow-all", selector=ORDER_LABELS, action="ALLOW", rules=[{}])

    assert widenings(authorization_policies=(policy,)) == (
        Widening(
            workload="order-service",
            kind="AuthorizationPolicy",
            object_ref="AuthorizationPolicy payments/allow-all",
            reason="ForeignAuthorizationPolicy",
            detail=(
                "AuthorizationPolicy payments/allow-all (workload-specific) "
                "allows every request to order-service"
            ),
        ),
    )


def test_dry_run_authorization_policy_does_not_widen() -> None:
    dry_run = authorization_policy("trial", rules=[{}], annotations={"istio.io/dry-run": "true"})
    enforced = authorization_policy("enforced", rules=[{}], annotations={"istio.io/dry-run": "false"})

    found = widenings(authorization_policies=(dry_run, enforced), service=only_order_service())

    assert [widening.object_ref for widening in found] == ["AuthorizationPolicy payments/enforced"]


@pytest.mark.parametrize(
    ("policy", "detail"),
    [
        pytest.param(
            authorization_policy("everyone", rules=[{}]),
            "AuthorizationPolicy payments/everyone (namespace-wide) allows every request to order-service",
            id="namespace-wide-without-action",
        ),
        pytest.param(
            authorization_policy("mesh", namespace="istio-system", action="ALLOW", rules=[{}]),
            "AuthorizationPolicy istio-system/mesh (mesh-wide) allows every request to order-service",
            id="mesh-wide",
        ),
        pytest.param(
            authorization_policy("mesh-order", namespace="istio-system", selector=ORDER_LABELS, rules=[{}]),
            "AuthorizationPolicy istio-system/mesh-order (mesh-wide, by selector) allows every request "
            "to order-service",
            id="root-namespace-selector-matches-every-namespace",
        ),
        pytest.param(
            authorization_policy(
                "two-rules",
                selector=ORDER_LABELS,
                rules=[
                    {"from": [{"source": {"namespaces": ["monitoring"]}}]},
                    {"to": [{"operation": {"methods": ["GET"]}}]},
                ],
            ),
            "AuthorizationPolicy payments/two-rules (workload-specific) allows requests matching its 2 rules "
            "to order-service",
            id="some-rules",
        ),
    ],
)
def test_authorization_policy_detail_says_its_scope_and_what_it_allows(
    policy: dict[str, Any], detail: str
) -> None:
    found = widenings(authorization_policies=(policy,), service=only_order_service())

    assert [widening.detail for widening in found] == [detail]


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(authorization_policy("deny", action="DENY", rules=[{}]), id="deny"),
        pytest.param(authorization_policy("audit", action="AUDIT", rules=[{}]), id="audit"),
        pytest.param(authorization_policy("custom", action="CUSTOM", rules=[{}]), id="custom"),
        pytest.param(authorization_policy("allow-nothing", action="ALLOW"), id="allow-without-rules"),
        pytest.param(
            authorization_policy("dry-run-one", rules=[{}], annotations={"istio.io/dry-run": "1"}),
            id="dry-run-as-istio-parses-it",
        ),
        pytest.param(
            authorization_policy(
                "gateway",
                rules=[{}],
                target_refs=[{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}],
            ),
            id="target-refs",
        ),
        pytest.param(
            authorization_policy("gateway", selector=GATEWAY_LABELS, rules=[{}]), id="other-workload"
        ),
        pytest.param(authorization_policy("elsewhere", namespace="other", rules=[{}]), id="other-namespace"),
        pytest.param(
            authorization_policy(
                "mesh-gateway", namespace="istio-system", selector=GATEWAY_LABELS, rules=[{}]
            ),
            id="root-namespace-selector-for-other-pods",
        ),
        pytest.param(
            authorization_policy("ours", selector=ORDER_LABELS, rules=[{}], owner_uid=SERVICE_UID),
            id="owned-by-this-service",
        ),
    ],
)
def test_authorization_policies_that_grant_the_workload_nothing_do_not_widen(policy: dict[str, Any]) -> None:
    assert widenings(authorization_policies=(policy,), service=only_order_service()) == ()


# --- least privilege: ServiceAccount ---------------------------------------------------------------------


def only_order_service() -> PaymentService:
    service = checkout()
    return dataclasses.replace(service, workloads=service.workloads[:1])


def with_service_accounts(service: PaymentService, *accounts: str) -> PaymentService:
    """The parser refuses these identities, so tests that need them build the model directly."""
    workloads = tuple(
        dataclasses.replace(workload, service_account=account)
        for workload, account in zip(service.workloads, accounts, strict=True)
    )
    return dataclasses.replace(service, workloads=workloads)


def test_default_service_account_is_reported() -> None:
    service = with_service_accounts(checkout(), "default", "api-gateway")

    assert widenings(service=service) == (
        Widening(
            workload="order-service",
            kind="ServiceAccount",
            object_ref="ServiceAccount payments/default",
            reason="DefaultServiceAccount",
            detail=(
                "order-service runs as ServiceAccount payments/default, "
                "which any pod in the namespace may use"
            ),
        ),
    )


def test_service_account_shared_by_two_workloads_of_the_service_is_reported_for_both() -> None:
    service = with_service_accounts(checkout(), "payments-app", "payments-app")

    found = widenings(service=service)

    assert [(widening.workload, widening.reason, widening.detail) for widening in found] == [
        (
            "order-service",
            "SharedServiceAccount",
            "ServiceAccount payments/payments-app of order-service is also used by workload api-gateway",
        ),
        (
            "api-gateway",
            "SharedServiceAccount",
            "ServiceAccount payments/payments-app of api-gateway is also used by workload order-service",
        ),
    ]


def test_service_account_shared_with_another_payment_service_names_it() -> None:
    refunds = single_workload_service(name="refunds", namespace="payments", service_account="order-service")

    found = widenings(service=only_order_service(), other_services=(refunds,))

    assert found == (
        Widening(
            workload="order-service",
            kind="ServiceAccount",
            object_ref="ServiceAccount payments/order-service",
            reason="SharedServiceAccount",
            detail=(
                "ServiceAccount payments/order-service of order-service is also used by "
                "workload worker of PaymentService payments/refunds"
            ),
        ),
    )


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(
            single_workload_service(name="refunds", namespace="billing", service_account="order-service"),
            id="same-name-in-another-namespace-is-another-account",
        ),
        pytest.param(
            single_workload_service(name="refunds", namespace="payments", service_account="refunds-worker"),
            id="different-account",
        ),
        pytest.param(checkout(), id="the-service-itself"),
    ],
)
def test_service_accounts_not_shared_are_not_reported(other: PaymentService) -> None:
    assert widenings(other_services=(other,)) == ()


# --- ordering and inputs ---------------------------------------------------------------------------------


def test_findings_follow_spec_order_then_object_reference() -> None:
    service = with_service_accounts(checkout(), "order-service", "default")
    zeta = network_policy("zeta", ingress=[{}])
    alpha = network_policy("alpha", ingress=[{}])
    mesh = authorization_policy("mesh", namespace="istio-system", rules=[{}])

    found = widenings(service=service, network_policies=(zeta, alpha), authorization_policies=(mesh,))

    assert [(widening.workload, widening.object_ref) for widening in found] == [
        ("order-service", "AuthorizationPolicy istio-system/mesh"),
        ("order-service", "NetworkPolicy payments/alpha"),
        ("order-service", "NetworkPolicy payments/zeta"),
        ("api-gateway", "AuthorizationPolicy istio-system/mesh"),
        ("api-gateway", "NetworkPolicy payments/alpha"),
        ("api-gateway", "NetworkPolicy payments/zeta"),
        ("api-gateway", "ServiceAccount payments/default"),
    ]


def test_inputs_may_be_one_shot_iterables() -> None:
    found = least_privilege_findings(
        checkout(),
        network_policies=iter([ALLOW_ALL_INGRESS]),
        authorization_policies=iter([]),
        other_services=iter([]),
    )
    postures = effective_mtls(checkout(), iter([managed_strict("order-service", ORDER_LABELS)]))

    assert [widening.workload for widening in found] == ["order-service", "api-gateway"]
    assert [posture.strict for posture in postures] == [True, False]


def test_findings_are_frozen() -> None:
    posture = mtls_of("order-service")

    with pytest.raises(dataclasses.FrozenInstanceError):
        posture.mode = "STRICT"  # type: ignore[misc]
