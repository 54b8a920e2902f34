"""Mesh and identity truth: no green light unless the pods are in the mesh, under the identity the policies
trust. Pure posture first, then whole passes on the fake cluster (the integration suite repeats the main
cases on a real API server)."""

from __future__ import annotations

from typing import Any

import pytest

from mesh_pods import SIDECAR_STATUS, pod_manifest, service_account_manifest
from pass_world import World, conditions, example
from payguard.cache import ObjectCache
from payguard.kinds import NAMESPACES, PODS, SERVICE_ACCOUNTS
from payguard.posture.mesh import MAX_NAMED, pod_dataplane, service_port_protocol
from payguard.posture.trust import trust_domain_check
from payguard.triggers import affected_services

GATEWAY = {"app.kubernetes.io/name": "api-gateway", "app.kubernetes.io/part-of": "checkout"}


def pod(**marks: Any) -> dict[str, Any]:
    return pod_manifest("payments", "p-0", labels=GATEWAY, service_account="api-gateway", **marks)


# --- which pods are in the mesh ---------------------------------------------------------------------


def test_a_pod_with_an_istio_proxy_container_or_native_sidecar_is_in_the_mesh() -> None:
    assert pod_dataplane(pod(), {}) == ("Sidecar", "")
    native = pod(sidecar=False)
    native["spec"]["initContainers"] = [{"name": "istio-proxy", "restartPolicy": "Always"}]
    assert pod_dataplane(native, {})[0] == "Sidecar"
    plain_init = pod(sidecar=False)
    plain_init["spec"]["initContainers"] = [{"name": "istio-proxy"}]  # not a sidecar: it exits
    assert pod_dataplane(plain_init, {"istio-injection": "enabled"})[0] is None


def test_a_pod_captured_by_ambient_mode_is_in_the_mesh_and_one_only_asking_is_not() -> None:
    captured = pod(sidecar=False, annotations={"ambient.istio.io/redirection": "enabled"})
    assert pod_dataplane(captured, {"istio.io/dataplane-mode": "ambient"}) == ("Ambient", "")
    dataplane, why = pod_dataplane(pod(sidecar=False), {"istio.io/dataplane-mode": "ambient"})
    assert dataplane is None and "ambient.istio.io/redirection=enabled" in why
    opted_out = pod(sidecar=False)
    opted_out["metadata"]["labels"]["istio.io/dataplane-mode"] = "none"
    assert "opted out" in pod_dataplane(opted_out, {"istio.io/dataplane-mode": "ambient"})[1]


@pytest.mark.parametrize(
    ("namespace_labels", "pod_annotations", "expected"),
    [
        ({}, {}, "namespace not labelled for injection"),
        ({"istio-injection": "disabled"}, {}, "istio-injection=disabled"),
        (
            {"istio-injection": "enabled"},
            {"sidecar.istio.io/inject": "false"},
            "sidecar.istio.io/inject=false",
        ),
        ({"istio-injection": "enabled"}, {}, "created before injection was enabled"),
        ({"istio.io/rev": "1-24"}, {}, "created before injection was enabled"),
    ],
)
def test_a_pod_outside_the_mesh_is_told_why_in_istios_terms(
    namespace_labels: dict[str, str], pod_annotations: dict[str, str], expected: str
) -> None:
    dataplane, why = pod_dataplane(pod(sidecar=False, annotations=pod_annotations), namespace_labels)
    assert dataplane is None
    assert expected in why


def test_the_injector_status_annotation_alone_does_not_make_a_pod_in_the_mesh() -> None:
    forged = pod(sidecar=False, annotations={"sidecar.istio.io/status": SIDECAR_STATUS})
    assert pod_dataplane(forged, {"istio-injection": "enabled"})[0] is None


@pytest.mark.parametrize(
    ("port", "protocol"),
    [
        ({"name": "tcp-orders", "port": 8080}, "tcp"),
        ({"name": "http-orders", "port": 8080, "appProtocol": "TLS"}, "tls"),
        ({"name": "grpc", "port": 8080}, "grpc"),
        ({"port": 8080}, ""),
    ],
)
def test_the_service_port_protocol_follows_istios_selection(port: dict[str, Any], protocol: str) -> None:
    assert service_port_protocol(port) == protocol


# --- the trust domain -------------------------------------------------------------------------------


def mesh_config(text: str) -> dict[str, Any]:
    return {"metadata": {"name": "istio", "namespace": "istio-system"}, "data": {"mesh": text}}


def test_the_trust_domain_must_be_the_meshs_or_an_alias() -> None:
    where = "istio-system/istio"
    assert trust_domain_check("cluster.local", mesh_config(""), where=where, unreadable=None).accepted
    aliased = mesh_config("trustDomain: corp.example\ntrustDomainAliases: [payments.example.com]\n")
    assert trust_domain_check("payments.example.com", aliased, where=where, unreadable=None).accepted
    refused = trust_domain_check(
        "payments.example.com", mesh_config("trustDomain: corp.example"), where=where, unreadable=None
    )
    assert refused.accepted is False
    assert "corp.example" in refused.message and "callers are denied" in refused.message


def test_an_unreadable_or_absent_mesh_config_is_said_and_not_judged() -> None:
    where = "istio-system/istio"
    rbac = trust_domain_check(
        "cluster.local", None, where=where, unreadable="RBAC does not let payguard list"
    )
    assert rbac.accepted is None and "RBAC" in rbac.message
    absent = trust_domain_check("cluster.local", None, where=where, unreadable=None)
    assert absent.accepted is None and "no mesh config ConfigMap istio-system/istio" in absent.message
    broken = trust_domain_check(
        "cluster.local", mesh_config("trustDomain: [unclosed"), where=where, unreadable=None
    )
    assert broken.accepted is None and "not YAML" in broken.message


# --- whole passes -----------------------------------------------------------------------------------


def judged(world: World, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    world.run(world.latest(body))
    return conditions(world.latest(body))


def test_pods_in_the_mesh_under_their_accounts_are_enrolled_and_summarised() -> None:
    world = World()
    body = world.create(example("checkout"))

    found = judged(world, body)

    assert found["MeshEnrolled"]["status"] == "True", found["MeshEnrolled"]
    assert found["MeshEnrolled"]["reason"] == "InMesh"
    assert found["MTLSStrict"]["status"] == found["AuthorizationEnforced"]["status"] == "True"
    summary = {w["name"]: w["mesh"] for w in world.latest(body)["status"]["workloads"]}
    assert summary["api-gateway"] == {"pods": 1, "inMesh": 1, "dataplane": "Sidecar"}


def test_pods_without_a_sidecar_turn_mtls_and_authorization_false_naming_the_pods() -> None:
    world = World()
    body = world.create(example("checkout"))
    world.cluster.edit("Namespace", "", "payments", lambda ns: ns["metadata"].update(labels={}))
    world.cluster.edit(
        "Pod", "payments", "checkout-api-gateway-0", lambda p: p["spec"].update(containers=[{"name": "app"}])
    )
    world.cluster.deliver(world.cache)

    found = judged(world, body)

    for kind in ("MTLSStrict", "AuthorizationEnforced", "MeshEnrolled"):
        assert found[kind]["status"] == "False", found[kind]
        assert found[kind]["reason"] == "PodsOutsideMesh"
        assert "checkout-api-gateway-0 (namespace not labelled for injection" in found[kind]["message"]
    assert found["Ready"]["status"] == "False"
    mesh = {w["name"]: w["mesh"] for w in world.latest(body)["status"]["workloads"]}["api-gateway"]
    assert mesh["inMesh"] == 0 and mesh["outsideMesh"][0].startswith("checkout-api-gateway-0")

    world.cluster.edit(
        "Pod",
        "payments",
        "checkout-api-gateway-0",
        lambda p: p["spec"]["containers"].append({"name": "istio-proxy"}),
    )
    world.cluster.deliver(world.cache)
    world.cluster.reset_calls()

    found = judged(world, body)

    for kind in ("MTLSStrict", "AuthorizationEnforced", "MeshEnrolled"):
        assert found[kind]["status"] == "True", found[kind]
    assert [c.verb for c in world.cluster.writes] == ["patch_status"]  # no other change


def test_many_pods_outside_the_mesh_are_named_first_few_then_counted() -> None:
    world = World()
    body = world.create(example("checkout"))
    for index in range(1, 9):
        world.cluster.seed(
            pod_manifest(
                "payments", f"gw-{index}", labels=GATEWAY, service_account="api-gateway", sidecar=False
            )
        )
    world.cluster.deliver(world.cache)

    message = judged(world, body)["MeshEnrolled"]["message"]

    assert "api-gateway: 8 of 9 pods outside the mesh" in message
    assert f"and {8 - MAX_NAMED} more" in message


def test_a_selector_matching_no_pod_is_reported() -> None:
    world = World()
    body = world.create(example("checkout"))
    world.cluster.delete(
        kind="Pod",
        namespace="payments",
        name="checkout-fraud-engine-0",
        uid=world.cluster.get("Pod", "payments", "checkout-fraud-engine-0")["metadata"]["uid"],
    )
    world.cluster.deliver(world.cache)

    found = judged(world, body)["MeshEnrolled"]

    assert (found["status"], found["reason"]) == ("False", "NoMatchingPods")
    assert found["message"].startswith("fraud-engine: its selector matches no live pod")


def test_pods_under_another_account_and_a_missing_account_are_reported() -> None:
    world = World()
    body = world.create(example("checkout"))
    world.cluster.edit(
        "Pod", "payments", "checkout-api-gateway-0", lambda p: p["spec"].update(serviceAccountName="default")
    )
    world.cluster.deliver(world.cache)

    found = judged(world, body)["MeshEnrolled"]

    assert (found["reason"], found["status"]) == ("ServiceAccountMismatch", "False")
    assert (
        "api-gateway: pods not running as api-gateway: checkout-api-gateway-0 (runs as default)"
        in found["message"]
    )

    account = world.cluster.get("ServiceAccount", "payments", "order-service")
    world.cluster.delete(
        kind="ServiceAccount", namespace="payments", name="order-service", uid=account["metadata"]["uid"]
    )
    world.cluster.deliver(world.cache)

    found = judged(world, body)["MeshEnrolled"]

    assert found["reason"] == "ServiceAccountMissing"
    assert "order-service: ServiceAccount order-service does not exist" in found["message"]


def test_a_trust_domain_the_mesh_does_not_accept_is_reported_and_cleared_by_an_alias() -> None:
    world = World()
    body = world.create(example("custom-trust-domain"))
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": "istio-system"},
        "data": {"mesh": "trustDomain: cluster.local\n"},
    }
    world.cluster.seed(config)
    world.cluster.deliver(world.cache)

    found = judged(world, body)["MeshEnrolled"]

    assert (found["status"], found["reason"]) == ("False", "TrustDomainNotAccepted")

    world.cluster.edit(
        "ConfigMap",
        "istio-system",
        "istio",
        lambda c: c["data"].update(
            mesh="trustDomain: cluster.local\ntrustDomainAliases: [payments.example.com]\n"
        ),
    )
    world.cluster.deliver(world.cache)

    assert judged(world, body)["MeshEnrolled"]["status"] == "True"


def test_an_l7_rule_on_a_port_istio_treats_as_opaque_is_reported() -> None:
    world = World()
    body = world.create(example("checkout"))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "orders", "namespace": "payments"},
        "spec": {
            "selector": {"app.kubernetes.io/name": "order-service"},
            "ports": [{"name": "tcp-orders", "port": 80, "targetPort": 8443}],
        },
    }
    world.cluster.seed(service)
    world.cluster.deliver(world.cache)

    found = judged(world, body)["AuthorizationEnforced"]

    assert (found["status"], found["reason"]) == ("False", "L7RuleIgnored")
    assert "order-service: port 8443: Service orders port tcp-orders is tcp" in found["message"]


def test_pods_that_cannot_be_observed_leave_mesh_conditions_unknown() -> None:
    world = World()
    body = world.create(example("checkout"))
    world.cache.set_unavailable("Pod", "RBAC does not let payguard list pods.core")

    found = judged(world, body)

    for kind in ("MTLSStrict", "AuthorizationEnforced", "MeshEnrolled"):
        assert (found[kind]["status"], found[kind]["reason"]) == ("Unknown", "NotObserved")
        assert "RBAC does not let payguard list pods.core" in found[kind]["message"]
    assert found["Ready"]["status"] == "False"
    assert all("mesh" not in w for w in world.latest(body)["status"]["workloads"])


# --- what wakes whom --------------------------------------------------------------------------------


def test_a_pod_wakes_only_the_services_that_select_it_and_a_namespace_only_its_own() -> None:
    cache = ObjectCache()
    for namespace, name, selector, account in (
        ("payments", "checkout", GATEWAY, "api-gateway"),
        ("payments", "refunds", {"app": "refunds"}, "refunds"),
        ("ledger", "ledger", GATEWAY, "api-gateway"),
    ):
        cache.put(
            "PaymentService",
            {
                "metadata": {"namespace": namespace, "name": name},
                "spec": {"workloads": [{"name": "w", "selector": selector, "serviceAccount": account}]},
            },
        )

    def woken(resource: Any, body: dict[str, Any]) -> list[tuple[str, str]]:
        return affected_services(resource, body, cache, mesh_root_namespace="istio-system")

    assert woken(PODS, pod()) == [("payments", "checkout")]
    assert woken(PODS, pod_manifest("payments", "x", labels={"other": "app"}, service_account="x")) == []
    assert woken(SERVICE_ACCOUNTS, service_account_manifest("payments", "refunds")) == [
        ("payments", "refunds")
    ]
    assert woken(NAMESPACES, {"metadata": {"name": "ledger"}}) == [("ledger", "ledger")]
    istiod = pod_manifest("istio-system", "istiod-0", labels={"app": "istiod"}, service_account="istiod")
    assert woken(PODS, istiod) == []  # a pod of the mesh root is not a mesh-wide policy
