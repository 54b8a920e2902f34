"""A whole reconcile pass (observe, converge, judge, write) against the in-memory fake cluster.

Each test runs `reconcile(body, context)` and asserts what reached the cluster: the children, the
status, the Events, and how many writes were sent. The fake's watch events are fed into the cache
between passes, as the operator's watch would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import pytest

import pki
from fake_cluster import FakeCluster
from pass_world import (
    CHECKOUT_WORKLOADS,
    CHILD_KINDS,
    LATER,
    NOW,
    NOW_TEXT,
    World,
    conditions,
    events,
    example,
)
from payguard.cache import ObjectCache
from payguard.conditions import ConditionType, Reason
from payguard.kinds import DRY_RUN_ANNOTATION, FINALIZER, MANAGED_BY_LABEL, SERVICE_LABEL, WORKLOAD_LABEL
from payguard.platform import Destination, Platform, ServicePort
from payguard.reconcile import PassContext, reconcile, system_clock
from payguard.settings import RunSettings


def set_mtls_mode(mode: str) -> Callable[[dict[str, Any]], None]:
    def change(live: dict[str, Any]) -> None:
        live["spec"]["mtls"]["mode"] = mode

    return change


# --- a new PaymentService --------------------------------------------------------------------------------


def test_a_new_payment_service_gets_four_children_per_workload() -> None:
    world = World()
    body = world.create(example("checkout"))

    world.run(body)

    applied = sorted((m["kind"], m["metadata"]["name"]) for m in world.applied())
    expected = sorted((kind, f"checkout-{w}") for kind in CHILD_KINDS for w in CHECKOUT_WORKLOADS)
    assert applied == expected
    for kind in CHILD_KINDS:
        assert len(world.cluster.stored(kind, "payments")) == len(CHECKOUT_WORKLOADS)


def test_every_child_of_a_new_payment_service_is_controlled_by_it() -> None:
    world = World()
    body = world.create(example("checkout"))

    world.run(body)

    uid = body["metadata"]["uid"]
    for manifest in world.applied():
        metadata = manifest["metadata"]
        assert metadata["ownerReferences"] == [
            {
                "apiVersion": "payguard.dev/v1alpha1",
                "kind": "PaymentService",
                "name": "checkout",
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ], metadata["name"]
        assert metadata["labels"][MANAGED_BY_LABEL] == "payguard"
        assert metadata["labels"][SERVICE_LABEL] == "checkout"
        assert metadata["name"] == f"checkout-{metadata['labels'][WORKLOAD_LABEL]}"


def test_a_new_payment_service_gets_one_created_event_naming_every_child() -> None:
    world = World()
    body = world.create(example("checkout"))

    world.run(body)

    # The example's ClusterIssuer does not exist here: that problem has its own Warning (below).
    assert [event["reason"] for event in world.cluster.events] == ["Created", "IssuerNotReady"]
    created = world.cluster.events[0]
    assert created["type"] == "Normal"
    assert created["regarding"] == {"name": "checkout", "uid": body["metadata"]["uid"]}
    for kind in CHILD_KINDS:
        for workload in CHECKOUT_WORKLOADS:
            assert f"{kind}/checkout-{workload}" in created["note"]


def test_a_new_payment_service_gets_one_status_patch_with_observed_generation_and_conditions() -> None:
    world = World()
    body = world.create(example("checkout"), generation=3)

    report = world.run(body)

    (patch,) = world.cluster.calls_of("patch_status")
    status = patch.payload
    assert status["observedGeneration"] == 3
    assert status["workloadCount"] == 4
    types = {c["type"] for c in status["conditions"]}
    assert types == {
        ConditionType.READY,
        ConditionType.MTLS_STRICT,
        ConditionType.AUTHORIZATION_ENFORCED,
        ConditionType.NETWORK_ISOLATED,
        ConditionType.CERTIFICATES_READY,
        ConditionType.IN_SYNC,
        ConditionType.LEAST_PRIVILEGE,
        ConditionType.MESH_ENROLLED,
    }
    assert {c["observedGeneration"] for c in status["conditions"]} == {3}
    stored = conditions(world.latest(body))
    assert stored[ConditionType.MTLS_STRICT]["status"] == "True"
    assert stored[ConditionType.AUTHORIZATION_ENFORCED]["reason"] == Reason.APPLIED
    assert stored[ConditionType.NETWORK_ISOLATED]["reason"] == Reason.APPLIED
    assert stored[ConditionType.IN_SYNC]["reason"] == Reason.NO_DRIFT
    assert report.status_written
    assert report.finalizer_added
    assert report.writes == 1 + 16 + 1  # the finalizer, the children, the status


def test_a_second_pass_after_the_watch_delivered_the_writes_sends_nothing() -> None:
    world = World()
    body = world.settled("checkout")

    report = world.run(body)

    assert world.cluster.calls == []
    assert report.writes == 0
    assert not report.status_written


def test_a_second_pass_with_the_stale_body_writes_the_status_again_and_nothing_else() -> None:
    # The counterpart of the quiet pass: without the patched status the pass cannot know it is done.
    world = World()
    body = world.create(example("checkout"))
    world.run(body)
    body["metadata"]["finalizers"] = [FINALIZER]  # stale but for what the first pass added

    world.run(body)

    assert [call.verb for call in world.cluster.writes] == ["patch_status"]


# --- audit ---------------------------------------------------------------------------------------------


def test_audit_only_applies_no_network_policy_and_no_peer_authentication() -> None:
    world = World(audit_only=True)
    body = world.create(example("checkout", enforcement="Enforce"))

    world.run(body)

    kinds = {m["kind"] for m in world.applied()}
    assert kinds == {"AuthorizationPolicy", "Certificate"}
    assert world.cluster.stored("NetworkPolicy") == []
    assert world.cluster.stored("PeerAuthentication") == []


def test_audit_only_applies_every_authorization_policy_as_dry_run() -> None:
    world = World(audit_only=True)
    body = world.create(example("checkout", enforcement="Enforce"))

    world.run(body)

    policies = world.applied("AuthorizationPolicy")
    assert len(policies) == len(CHECKOUT_WORKLOADS)
    for policy in policies:
        assert policy["metadata"]["annotations"][DRY_RUN_ANNOTATION] == "true"


def test_an_enforced_service_without_audit_only_applies_no_dry_run_annotation() -> None:
    world = World(audit_only=False)
    body = world.create(example("checkout", enforcement="Enforce"))

    world.run(body)

    for policy in world.applied("AuthorizationPolicy"):
        assert DRY_RUN_ANNOTATION not in policy["metadata"]["annotations"]


def test_audit_only_reports_audit_mode_in_the_status() -> None:
    world = World(audit_only=True)
    body = world.create(example("checkout", enforcement="Enforce"))

    world.run(body)

    status = conditions(world.latest(body))
    for kind in (ConditionType.AUTHORIZATION_ENFORCED, ConditionType.NETWORK_ISOLATED):
        assert status[kind]["status"] == "False"
        assert status[kind]["reason"] == Reason.AUDIT_MODE
    assert status[ConditionType.READY]["status"] == "False"
    assert status[ConditionType.READY]["reason"] == Reason.AUDIT_MODE


def test_audit_only_prunes_the_peer_authentications_and_network_policies_an_enforced_pass_applied() -> None:
    world = World()
    body = world.settled("checkout")
    before = {
        (obj["kind"], obj["metadata"]["name"]): obj["metadata"]["uid"]
        for kind in ("PeerAuthentication", "NetworkPolicy")
        for obj in world.cluster.stored(kind)
    }
    assert len(before) == 8

    world.run(body, dataclasses.replace(world.context, audit_only=True))

    deleted = {(call.kind, call.name): call.payload["uid"] for call in world.cluster.calls_of("delete")}
    assert deleted == before
    assert world.cluster.stored("PeerAuthentication") == []
    assert world.cluster.stored("NetworkPolicy") == []
    assert len(world.cluster.stored("Certificate")) == 4
    (pruned,) = events(world, "Pruned")
    assert "NetworkPolicy/checkout-api-gateway" in pruned["note"]
    for policy in world.cluster.stored("AuthorizationPolicy"):
        assert policy["metadata"]["annotations"][DRY_RUN_ANNOTATION] == "true"


# --- platform and settings -------------------------------------------------------------------------------


def test_a_non_default_platform_reaches_the_network_policy_egress() -> None:
    platform = Platform(
        dns=(Destination("openshift-dns", (("dns.operator.openshift.io/daemonset-dns", "default"),)),),
        dns_ports=(ServicePort(5353, "UDP"), ServicePort(5353, "TCP")),
        mesh=(Destination("istio-canary", (("app", "istiod"), ("istio.io/rev", "canary"))),),
        mesh_ports=(ServicePort(15013),),
    )
    world = World(platform=platform)
    body = world.create(example("minimal"))

    world.run(body)

    (policy,) = world.applied("NetworkPolicy")
    assert policy["spec"]["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}},
                    "podSelector": {"matchLabels": {"dns.operator.openshift.io/daemonset-dns": "default"}},
                }
            ],
            "ports": [{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}],
        },
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-canary"}},
                    "podSelector": {"matchLabels": {"app": "istiod", "istio.io/rev": "canary"}},
                }
            ],
            "ports": [{"port": 15013, "protocol": "TCP"}],
        },
    ]


def test_pass_context_from_settings_carries_every_setting() -> None:
    platform = Platform(
        dns=(Destination(cidr="169.254.20.10/32"),), mesh=(Destination("istio-canary", (("app", "istiod"),)),)
    )
    settings = RunSettings(
        audit_only=True,
        platform=platform,
        mesh_root_namespace="mesh-root",
        mesh_config_name="istio-canary",
        fight_window_seconds=42,
    )
    cluster, cache = FakeCluster(), ObjectCache()

    def clock() -> datetime:
        return NOW

    context = PassContext.from_settings(settings, cluster=cluster, cache=cache, clock=clock)

    assert context.cluster is cluster
    assert context.cache is cache
    assert context.platform == platform
    assert context.mesh_root_namespace == "mesh-root"
    assert context.mesh_config_name == "istio-canary"
    assert context.drift_history.window.total_seconds() == 42
    assert context.audit_only is True
    assert context.clock is clock


def test_pass_context_from_settings_reads_the_system_clock_unless_given_one() -> None:
    context = PassContext.from_settings(RunSettings(), cluster=FakeCluster(), cache=ObjectCache())

    assert context.clock is system_clock
    assert context.audit_only is False
    assert context.platform == Platform()


def test_no_pass_context_field_has_a_default() -> None:
    fields = dataclasses.fields(PassContext)

    assert {f.name for f in fields} == {
        "cluster",
        "cache",
        "platform",
        "mesh_root_namespace",
        "mesh_config_name",
        "audit_only",
        "drift_history",
        "clock",
    }
    for field in fields:
        assert field.default is dataclasses.MISSING, field.name
        assert field.default_factory is dataclasses.MISSING, field.name


# --- an invalid spec -------------------------------------------------------------------------------------


def call_unknown_workload(spec: dict[str, Any]) -> None:
    spec["workloads"][1]["callers"].append({"workload": "ledger", "ports": [8443]})


INVALID_PATH = "spec.workloads[1].callers[2].workload"


def test_an_invalid_new_spec_writes_only_a_status_naming_the_field() -> None:
    world = World()
    body = example("checkout")
    call_unknown_workload(body["spec"])
    body = world.create(body)

    report = world.run(body)

    # The finalizer first: a spec payguard cannot read must not let a deletion open the workloads.
    assert world.verbs() == ["json_patch", "patch_status", "post_event"]
    (event,) = events(world, Reason.INVALID_SPEC)
    assert event["type"] == "Warning" and INVALID_PATH in event["note"]
    assert INVALID_PATH in report.invalid
    ready = conditions(world.latest(body))[ConditionType.READY]
    assert ready["status"] == "False"
    assert ready["reason"] == Reason.INVALID_SPEC
    assert INVALID_PATH in ready["message"]
    for kind in CHILD_KINDS:
        assert world.cluster.stored(kind) == []


def test_an_invalid_spec_keeps_the_last_good_controls_in_place() -> None:
    world = World()
    body = world.settled("checkout")
    children = {kind: world.cluster.stored(kind) for kind in CHILD_KINDS}
    body = world.edit_spec(body, call_unknown_workload)

    world.run(body)

    assert world.verbs() == ["patch_status", "post_event"]  # the InvalidSpec Warning
    assert {kind: world.cluster.stored(kind) for kind in CHILD_KINDS} == children
    status = world.latest(body)["status"]
    ready = conditions(world.latest(body))[ConditionType.READY]
    assert (ready["status"], ready["reason"]) == ("False", Reason.INVALID_SPEC)
    assert INVALID_PATH in ready["message"]
    assert status["observedGeneration"] == 2


# --- someone else's object -------------------------------------------------------------------------------


def foreign_network_policy() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "checkout-api-gateway", "namespace": "payments", "labels": {"team": "edge"}},
        "spec": {"podSelector": {"matchLabels": {"app": "edge"}}, "policyTypes": ["Ingress"]},
    }


def test_a_foreign_object_holding_a_childs_name_is_left_untouched() -> None:
    world = World()
    foreign = world.cluster.seed(foreign_network_policy())
    world.cluster.deliver(world.cache)
    body = world.create(example("checkout"))

    report = world.run(body)

    assert world.cluster.get("NetworkPolicy", "payments", "checkout-api-gateway") == foreign
    touched = {(c.verb, c.kind, c.name) for c in world.cluster.writes}
    assert ("apply", "NetworkPolicy", "checkout-api-gateway") not in touched
    assert ("delete", "NetworkPolicy", "checkout-api-gateway") not in touched
    assert ("apply", "NetworkPolicy", "checkout-order-service") in touched
    outcomes = {(c.kind, c.name): c.outcome for c in report.children}
    assert outcomes[("NetworkPolicy", "checkout-api-gateway")] == "Conflict"


def test_a_foreign_object_holding_a_childs_name_is_reported_as_a_name_conflict() -> None:
    world = World()
    world.cluster.seed(foreign_network_policy())
    world.cluster.deliver(world.cache)
    body = world.create(example("checkout"))

    world.run(body)

    status = conditions(world.latest(body))
    isolated = status[ConditionType.NETWORK_ISOLATED]
    assert (isolated["status"], isolated["reason"]) == ("False", Reason.NAME_CONFLICT)
    assert "NetworkPolicy/checkout-api-gateway" in isolated["message"]
    assert status[ConditionType.READY]["reason"] == Reason.NAME_CONFLICT


# --- drift -----------------------------------------------------------------------------------------------


def test_a_permissive_edit_is_reverted_under_drift_policy_revert() -> None:
    world = World()
    body = world.settled("checkout", driftPolicy="Revert")
    world.cluster.edit(
        "PeerAuthentication", "payments", "checkout-order-service", set_mtls_mode("PERMISSIVE")
    )
    world.cluster.deliver(world.cache)

    world.run(body)

    applies = [(c.kind, c.name) for c in world.cluster.calls_of("apply")]
    assert applies == [("PeerAuthentication", "checkout-order-service")]
    live = world.cluster.get("PeerAuthentication", "payments", "checkout-order-service")
    assert live is not None
    assert live["spec"]["mtls"]["mode"] == "STRICT"
    (reverted,) = events(world, "DriftReverted")
    assert reverted["type"] == "Warning"
    assert "PeerAuthentication/checkout-order-service: spec.mtls.mode" in reverted["note"]
    in_sync = conditions(world.latest(body))[ConditionType.IN_SYNC]
    assert (in_sync["status"], in_sync["reason"]) == ("True", Reason.DRIFT_REVERTED)


def test_a_foreign_key_added_to_a_child_is_removed_under_drift_policy_revert() -> None:
    world = World()
    body = world.settled("checkout", driftPolicy="Revert")

    def open_a_port(live: dict[str, Any]) -> None:
        live["spec"]["portLevelMtls"] = {"8443": {"mode": "DISABLE"}}

    world.cluster.edit("PeerAuthentication", "payments", "checkout-api-gateway", open_a_port)
    world.cluster.deliver(world.cache)

    world.run(body)

    (removal,) = world.cluster.calls_of("remove_fields")
    assert removal.payload["fields"] == (("spec", "portLevelMtls"),)
    live = world.cluster.get("PeerAuthentication", "payments", "checkout-api-gateway")
    assert live is not None
    assert "portLevelMtls" not in live["spec"]


def test_a_permissive_edit_is_only_reported_under_drift_policy_report() -> None:
    world = World()
    body = world.settled("checkout", driftPolicy="Report")
    world.cluster.edit(
        "PeerAuthentication", "payments", "checkout-order-service", set_mtls_mode("PERMISSIVE")
    )
    world.cluster.deliver(world.cache)

    world.run(body)

    assert world.cluster.calls_of("apply") == []
    assert world.cluster.calls_of("remove_fields") == []
    assert events(world, "DriftReverted") == []
    live = world.cluster.get("PeerAuthentication", "payments", "checkout-order-service")
    assert live is not None
    assert live["spec"]["mtls"]["mode"] == "PERMISSIVE"
    status = conditions(world.latest(body))
    in_sync = status[ConditionType.IN_SYNC]
    assert (in_sync["status"], in_sync["reason"]) == ("False", Reason.DRIFT_DETECTED)
    assert "PeerAuthentication/checkout-order-service: spec.mtls.mode" in in_sync["message"]
    assert status[ConditionType.MTLS_STRICT]["status"] == "False"


def test_a_spec_change_is_applied_under_drift_policy_report() -> None:
    world = World()
    body = world.settled("checkout", driftPolicy="Report")

    def add_a_path(spec: dict[str, Any]) -> None:
        spec["workloads"][2]["callers"][0]["paths"].append("/fraud.v1.FraudService/Explain")

    body = world.edit_spec(body, add_a_path)

    world.run(body)

    applies = [(c.kind, c.name) for c in world.cluster.calls_of("apply")]
    assert applies == [("AuthorizationPolicy", "checkout-fraud-engine")]


# --- refused writes and the clock ------------------------------------------------------------------------


def test_a_refused_apply_is_reported_as_apply_failed_and_the_pass_goes_on() -> None:
    world = World()
    world.cluster.refuse_apply("NetworkPolicy", status=403, message="networkpolicies is forbidden")
    body = world.create(example("checkout"))

    report = world.run(body)

    outcomes = {c.outcome for c in report.children if c.kind == "NetworkPolicy"}
    assert outcomes == {"Failed"}
    assert len(world.cluster.stored("PeerAuthentication")) == 4
    assert len(world.cluster.stored("Certificate")) == 4
    status = conditions(world.latest(body))
    isolated = status[ConditionType.NETWORK_ISOLATED]
    assert (isolated["status"], isolated["reason"]) == ("False", Reason.APPLY_FAILED)
    assert "networkpolicies is forbidden" in isolated["message"]
    assert status[ConditionType.READY]["reason"] == Reason.APPLY_FAILED
    (failed,) = events(world, "ApplyFailed")
    assert failed["type"] == "Warning"
    assert "Apply NetworkPolicy payments/checkout-api-gateway failed (403)" in failed["note"]


def test_the_context_clock_sets_every_last_transition_time() -> None:
    world = World(clock=lambda: NOW)
    body = world.create(example("checkout"))

    world.run(body)

    transitions = {c["lastTransitionTime"] for c in world.latest(body)["status"]["conditions"]}
    assert transitions == {NOW_TEXT}


def test_a_later_clock_moves_only_the_transition_of_a_condition_that_flipped() -> None:
    world = World(clock=lambda: NOW)
    body = world.settled("checkout")
    world.cluster.edit(
        "PeerAuthentication", "payments", "checkout-order-service", set_mtls_mode("PERMISSIVE")
    )
    world.cluster.deliver(world.cache)
    body = world.edit_spec(body, lambda spec: spec.update(driftPolicy="Report"))

    world.run(body, dataclasses.replace(world.context, clock=lambda: LATER))

    status = conditions(world.latest(body))
    assert status[ConditionType.IN_SYNC]["lastTransitionTime"] == "2031-03-05T09:00:00Z"
    assert status[ConditionType.MTLS_STRICT]["lastTransitionTime"] == "2031-03-05T09:00:00Z"
    assert status[ConditionType.LEAST_PRIVILEGE]["lastTransitionTime"] == NOW_TEXT


def issued_certificate_for_key_rotation(world: World) -> None:
    """A Ready Issuer and the CertificateRequest cert-manager would leave: valid from 1h before NOW, 24h."""
    world.cluster.seed(
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": {"name": "payments-ca"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
    )
    ca = pki.authority("payments-ca", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=30))
    leaf = ca.issue(
        pki.private_key("ECDSA", 256).public_key(),
        not_before=NOW - timedelta(hours=1),
        not_after=NOW + timedelta(hours=23),
        uris=["spiffe://cluster.local/ns/payments/sa/key-rotator"],
    )
    world.cluster.seed(
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "CertificateRequest",
            "metadata": {
                "name": "key-rotation-rotator-1",
                "namespace": "payments",
                "annotations": {
                    "cert-manager.io/certificate-name": "key-rotation-rotator",
                    "cert-manager.io/certificate-revision": "1",
                },
            },
            "status": {"certificate": pki.b64(pki.pem(leaf))},
        }
    )
    world.cluster.deliver(world.cache)


def minimal_with_issued_certificate(world: World) -> dict[str, Any]:
    """The minimal example after its first pass, with its certificate issued (not yet stored)."""
    issued_certificate_for_key_rotation(world)
    body = world.create(example("minimal"))
    world.run(body)
    return body


def store_revision_one(world: World, *, held: Collection[str] = ()) -> None:
    """cert-manager records the revision it stored; payguard judges that revision's request."""
    world.cluster.edit(
        "Certificate", "payments", "key-rotation-rotator", lambda c: c.update(status={"revision": 1})
    )
    world.cluster.deliver(world.cache, held=held)


def test_the_context_clock_judges_the_certificates() -> None:
    world = World(clock=lambda: NOW)
    body = minimal_with_issued_certificate(world)
    store_revision_one(world)

    report = world.run(world.latest(body))
    body = world.latest(body)
    at_now = conditions(body)[ConditionType.CERTIFICATES_READY]
    world.run(body, dataclasses.replace(world.context, clock=lambda: NOW + timedelta(days=2)))
    two_days_later = conditions(world.latest(body))[ConditionType.CERTIFICATES_READY]

    assert (at_now["status"], at_now["reason"]) == ("True", "Issued")
    assert report.next_certificate_change is not None
    assert NOW < report.next_certificate_change <= NOW + timedelta(hours=23)
    assert (two_days_later["status"], two_days_later["reason"]) == ("False", "Expired")


ROTATOR_REQUEST = "key-rotation-rotator-1"


def certificates_ready_when_the_requests_lag(lag: str) -> tuple[dict[str, Any], list[str]]:
    """CertificatesReady, and what the pass read, after the Certificate's watch delivered revision 1 while
    the cache holds its request unsigned, or not at all; `gone`: deleted from the API server too."""
    world = World(clock=lambda: NOW)
    body = minimal_with_issued_certificate(world)
    request = world.cluster.get("CertificateRequest", "payments", ROTATOR_REQUEST)
    assert request is not None
    if lag == "unsigned":
        world.cache.put("CertificateRequest", {**request, "status": {}})
    else:
        world.cache.remove("CertificateRequest", namespace="payments", name=ROTATOR_REQUEST)
    if lag == "gone":
        world.cluster.objects.pop(("CertificateRequest", "payments", ROTATOR_REQUEST))
    store_revision_one(world, held={"CertificateRequest"})
    world.cluster.reset_calls()

    reconcile(world.latest(body), world.context)

    reads = [call.verb for call in world.cluster.calls if call.verb.startswith("read")]
    return conditions(world.latest(body))[ConditionType.CERTIFICATES_READY], reads


@pytest.mark.parametrize("lag", ["unsigned", "missing"])
def test_a_request_the_watch_has_not_delivered_signed_is_read_not_reported(lag: str) -> None:
    ready, reads = certificates_ready_when_the_requests_lag(lag)

    assert (ready["status"], ready["reason"]) == ("True", "Issued")
    assert reads == ["read_certificate_requests"]


def test_a_request_that_is_really_gone_is_reported_missing_after_one_read() -> None:
    ready, reads = certificates_ready_when_the_requests_lag("gone")

    assert (ready["status"], ready["reason"]) == ("False", "RequestMissing")
    assert reads == ["read_certificate_requests"]


def test_a_settled_certificate_reads_nothing() -> None:
    world = World(clock=lambda: NOW)
    body = minimal_with_issued_certificate(world)
    store_revision_one(world)

    world.run(world.latest(body))

    assert [call.verb for call in world.cluster.calls if call.verb.startswith("read")] == []


# --- a kind payguard cannot observe ------------------------------------------------------------------------

MISSING_CRD = "CustomResourceDefinition authorizationpolicies.security.istio.io is not served"


def test_a_kind_that_cannot_be_observed_is_neither_written_nor_judged_as_holding() -> None:
    world = World()
    body = world.create(example("checkout"))
    world.cache.set_unavailable("AuthorizationPolicy", MISSING_CRD)

    world.run(body)

    assert world.applied("AuthorizationPolicy") == []
    assert len(world.applied("PeerAuthentication")) == 4  # what can be seen is still enforced
    found = conditions(world.latest(body))
    for kind in ("AuthorizationEnforced", "LeastPrivilege", "InSync"):
        assert found[kind]["status"] == "Unknown", found[kind]
        assert found[kind]["reason"] == "NotObserved"
        assert MISSING_CRD in found[kind]["message"]
    assert found["MTLSStrict"]["status"] == "True"
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == ("False", "NotObserved")
    assert events(world, "ApplyFailed") == []


def test_a_kind_served_again_is_applied_and_judged_on_the_next_pass() -> None:
    world = World()
    body = world.create(example("checkout"))
    world.cache.set_unavailable("AuthorizationPolicy", MISSING_CRD)
    world.run(body)

    world.cache.set_unavailable("AuthorizationPolicy", None)
    world.run(world.latest(body))

    assert len(world.applied("AuthorizationPolicy")) == 4
    found = conditions(world.latest(body))
    assert found["AuthorizationEnforced"]["status"] == "True"
    assert found["AuthorizationEnforced"]["lastTransitionTime"] == NOW_TEXT
