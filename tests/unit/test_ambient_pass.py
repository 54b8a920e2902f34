"""Ambient mode through a whole pass on the fake cluster: what is applied and judged when Istio's labels say
ambient, the WaypointMissing report, a label change re-rendering, and waypoint-bound foreign policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mesh_pods import AMBIENT_LABELS, ambient_enrolment, namespace_manifest
from pass_world import World, conditions, example
from payguard.dataplane import dataplanes
from payguard.kinds import NAMESPACES, PODS
from payguard.observe import observe
from payguard.posture.privilege import FOREIGN_AUTHORIZATION_POLICY, least_privilege_findings
from payguard.spec import parse_payment_service
from payguard.triggers import affected_services

REPO = Path(__file__).resolve().parents[2]
WAYPOINT = {"istio.io/use-waypoint": "waypoint"}


def cluster_services() -> list[dict[str, Any]]:
    objects = yaml.safe_load_all((REPO / "examples" / "ambient" / "cluster.yaml").read_text())
    return [o for o in objects if o["kind"] == "Service"]


def ambient_world(*, waypoint: bool) -> tuple[World, dict[str, Any]]:
    """The ambient example in a namespace enrolled in ambient mode (with or without a namespace waypoint),
    its Services, and one captured pod per workload."""
    world = World()
    body = example("ambient")
    labels = {**AMBIENT_LABELS, **(WAYPOINT if waypoint else {})}
    for manifest in [namespace_manifest("payments", labels), *ambient_enrolment(body), *cluster_services()]:
        world.cluster.seed(manifest)
    live = world.create(body, enrol=False)
    return world, live


def test_ambient_namespace_with_a_waypoint_gets_waypoint_policies_and_every_posture_condition_holds() -> None:
    world, body = ambient_world(waypoint=True)
    world.run(body)
    names = sorted(p["metadata"]["name"] for p in world.applied("AuthorizationPolicy"))
    assert names == [
        "wallet-api-gateway",
        "wallet-api-gateway-waypoint",
        "wallet-ledger",
        "wallet-ledger-waypoint",
        "wallet-token-vault",
    ]
    found = conditions(world.latest(body))
    for kind, reason in (
        ("AuthorizationEnforced", "Applied"),
        ("MeshEnrolled", "InMesh"),
        ("MTLSStrict", "Strict"),
        ("NetworkIsolated", "Applied"),
        ("LeastPrivilege", "LeastPrivilege"),
    ):
        assert (found[kind]["status"], found[kind]["reason"]) == ("True", reason), found[kind]
    mesh = {w["name"]: w["mesh"]["dataplane"] for w in world.latest(body)["status"]["workloads"]}
    assert set(mesh.values()) == {"Ambient"}


def test_l7_rules_without_a_waypoint_are_reported_and_never_green() -> None:
    world, body = ambient_world(waypoint=False)
    world.run(body)
    found = conditions(world.latest(body))["AuthorizationEnforced"]
    assert (found["status"], found["reason"]) == ("False", "WaypointMissing")
    assert "api-gateway: runs in ambient mode and no waypoint serves a Service of it" in found["message"]
    assert "principal istio-ingress/istio-ingressgateway" in found["message"]
    assert "ledger: " in found["message"] and "workload api-gateway" in found["message"]
    assert "token-vault" not in found["message"]  # L4 callers only: ztunnel enforces them
    assert conditions(world.latest(body))["Ready"]["status"] == "False"
    assert [e for e in world.cluster.events if e["reason"] == "WaypointMissing"]


def test_labelling_the_namespace_with_a_waypoint_re_renders_exactly_the_affected_policies() -> None:
    world, body = ambient_world(waypoint=False)
    world.run(body)
    body = world.latest(body)

    def label(namespace: dict[str, Any]) -> None:
        namespace["metadata"]["labels"].update(WAYPOINT)

    world.cluster.edit("Namespace", "", "payments", label)
    world.cluster.deliver(world.cache)
    namespace = world.cluster.get("Namespace", "", "payments")
    assert namespace is not None
    assert affected_services(NAMESPACES, namespace, world.cache, mesh_root_namespace="istio-system") == [
        ("payments", "wallet")
    ]
    world.run(body)
    applied = sorted((c["kind"], c["metadata"]["name"]) for c in world.applied())
    # ztunnel policies gain the waypoint, waypoint policies appear, NetworkPolicies admit the waypoint;
    # token-vault's Service opts out of the waypoint, so nothing of it changes.
    assert applied == [
        ("AuthorizationPolicy", "wallet-api-gateway"),
        ("AuthorizationPolicy", "wallet-api-gateway-waypoint"),
        ("AuthorizationPolicy", "wallet-ledger"),
        ("AuthorizationPolicy", "wallet-ledger-waypoint"),
        ("NetworkPolicy", "wallet-api-gateway"),
        ("NetworkPolicy", "wallet-ledger"),
    ]
    found = conditions(world.latest(body))["AuthorizationEnforced"]
    assert (found["status"], found["reason"]) == ("True", "Applied")


def test_a_waypoints_pod_wakes_every_payment_service_of_its_namespace() -> None:
    world, _ = ambient_world(waypoint=True)
    waypoint_pod = {
        "metadata": {
            "name": "waypoint-0",
            "namespace": "payments",
            "labels": {"gateway.networking.k8s.io/gateway-name": "waypoint"},
        }
    }
    assert affected_services(PODS, waypoint_pod, world.cache, mesh_root_namespace="istio-system") == [
        ("payments", "wallet")
    ]


def test_observe_reads_ambient_mode_and_falls_back_to_sidecar_when_pods_cannot_be_observed() -> None:
    world, body = ambient_world(waypoint=True)
    service = parse_payment_service(body)
    snapshot = observe(service, world.cache, mesh_root_namespace="istio-system", mesh_config_name="istio")
    assert snapshot.dataplanes.of("ledger").ambient
    world.cache.set_unavailable(PODS.kind, "pods is forbidden")
    blind = observe(service, world.cache, mesh_root_namespace="istio-system", mesh_config_name="istio")
    assert not blind.dataplanes.any_ambient


def test_foreign_allow_policy_bound_to_the_workloads_waypoint_or_service_widens_access() -> None:
    service = parse_payment_service(
        {**example("ambient"), "metadata": {"name": "wallet", "namespace": "payments", "uid": "u1"}}
    )
    namespace = namespace_manifest("payments", {**AMBIENT_LABELS, **WAYPOINT})
    planes = dataplanes(service, namespace=namespace, pods=[], services=cluster_services())

    def foreign(name: str, ref: dict[str, str]) -> dict[str, Any]:
        return {
            "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": "payments"},
            "spec": {"targetRefs": [ref], "action": "ALLOW", "rules": [{}]},
        }

    policies = [
        foreign("to-ledger", {"group": "", "kind": "Service", "name": "ledger"}),
        foreign("to-waypoint", {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}),
        foreign("to-vault", {"group": "", "kind": "Service", "name": "token-vault"}),  # opted out: unbound
    ]
    found = least_privilege_findings(
        service, network_policies=[], authorization_policies=policies, dataplanes=planes
    )
    bound = sorted((w.workload, w.object_ref) for w in found if w.reason == FOREIGN_AUTHORIZATION_POLICY)
    assert bound == [
        ("api-gateway", "AuthorizationPolicy payments/to-waypoint"),
        ("ledger", "AuthorizationPolicy payments/to-ledger"),
        ("ledger", "AuthorizationPolicy payments/to-waypoint"),
    ]
    sidecar = least_privilege_findings(service, network_policies=[], authorization_policies=policies)
    assert not [w for w in sidecar if w.reason == FOREIGN_AUTHORIZATION_POLICY]


def test_a_pod_with_a_waypoint_of_its_own_is_reported_as_bypassing_the_l7_rules() -> None:
    world, body = ambient_world(waypoint=True)

    def label(pod: dict[str, Any]) -> None:
        pod["metadata"]["labels"]["istio.io/use-waypoint"] = "pod-waypoint"

    world.cluster.edit("Pod", "payments", "wallet-ledger-0", label)
    world.cluster.deliver(world.cache)
    world.run(body)
    found = conditions(world.latest(body))["AuthorizationEnforced"]
    assert (found["status"], found["reason"]) == ("False", "WaypointBypass")
    assert found["message"].startswith("ledger: pods wallet-ledger-0 (istio.io/use-waypoint=pod-waypoint)")


def test_a_foreign_object_holding_the_ztunnel_policys_name_shows_in_the_workload_summary() -> None:
    world, body = ambient_world(waypoint=True)
    world.cluster.seed(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "wallet-ledger", "namespace": "payments"},
            "spec": {"action": "ALLOW"},
        }
    )
    world.cluster.deliver(world.cache)
    world.run(body)
    latest = world.latest(body)
    summary = {w["name"]: w["authorization"] for w in latest["status"]["workloads"]}
    assert summary["ledger"] == "Conflict"  # its waypoint policy applied, its ztunnel policy did not
    assert summary["api-gateway"] == "Applied"
    found = conditions(latest)["AuthorizationEnforced"]
    assert (found["status"], found["reason"]) == ("False", "NameConflict")


def test_removing_the_waypoint_narrows_ztunnel_before_the_waypoint_policy_is_pruned() -> None:
    world, body = ambient_world(waypoint=True)
    world.run(body)
    body = world.latest(body)

    def unlabel(namespace: dict[str, Any]) -> None:
        del namespace["metadata"]["labels"]["istio.io/use-waypoint"]

    world.cluster.edit("Namespace", "", "payments", unlabel)
    world.cluster.deliver(world.cache)
    world.run(body)
    calls = [(c.verb, c.name) for c in world.cluster.calls if c.kind == "AuthorizationPolicy"]
    assert calls.index(("apply", "wallet-ledger")) < calls.index(("delete", "wallet-ledger-waypoint"))
    assert ("delete", "wallet-api-gateway-waypoint") in calls
    found = conditions(world.latest(body))["AuthorizationEnforced"]
    assert (found["status"], found["reason"]) == ("False", "WaypointMissing")
