"""Drift an auditor can trust: a deleted child is drift under both policies, an owner's spec change (a
new generation) never is, and switching Audit and Enforce is not tampering."""

from __future__ import annotations

from typing import Any

import pytest

from pass_world import World, conditions, events, example
from payguard.reconcile import reconcile


def test_a_child_deleted_under_revert_is_recreated_and_reported_as_drift() -> None:
    world = World()
    body = world.settled("checkout", driftPolicy="Revert")
    live = world.cluster.get("NetworkPolicy", "payments", "checkout-order-service")
    assert live is not None
    world.cluster.delete(
        kind="NetworkPolicy", namespace="payments", name="checkout-order-service", uid=live["metadata"]["uid"]
    )
    world.cluster.deliver(world.cache)

    world.run(world.latest(body))

    assert world.cluster.get("NetworkPolicy", "payments", "checkout-order-service") is not None
    assert events(world, "Created") == []
    (reverted,) = events(world, "DriftReverted")
    assert "NetworkPolicy/checkout-order-service: (deleted)" in reverted["note"]
    in_sync = conditions(world.latest(body))["InSync"]
    assert (in_sync["status"], in_sync["reason"]) == ("True", "DriftReverted")
    assert "(deleted)" in in_sync["message"]


def test_a_child_the_watch_has_not_delivered_yet_is_not_drift() -> None:
    """The first pass creates the controls and records its generation; the next pass starts (on the
    PaymentService's own status event) before the NetworkPolicy watch has delivered the create."""
    world = World()
    body = world.create(example("checkout", driftPolicy="Revert"))
    reconcile(body, world.context)
    world.cluster.deliver(world.cache, held={"NetworkPolicy"})
    assert world.cache.get("NetworkPolicy", namespace="payments", name="checkout-order-service") is None
    world.cluster.reset_calls()

    reconcile(world.latest(body), world.context)

    assert world.cluster.writes == []
    lagging = {policy["metadata"]["name"] for policy in world.cluster.stored("NetworkPolicy", "payments")}
    assert len(lagging) == 4
    assert {(call.kind, call.name) for call in world.cluster.calls_of("read_child")} == {
        ("NetworkPolicy", name) for name in lagging
    }
    assert events(world, "DriftReverted") == []
    in_sync = conditions(world.latest(body))["InSync"]
    assert (in_sync["status"], in_sync["reason"]) == ("True", "NoDrift")


def test_a_child_updated_by_the_last_pass_is_not_applied_again_before_its_watch_delivers_it() -> None:
    world = World()
    body = world.settled("checkout")

    def only_get(spec: dict[str, Any]) -> None:
        spec["workloads"][0]["callers"][0]["methods"] = ["GET"]

    body = world.edit_spec(body, only_get)
    world.cluster.reset_calls()
    reconcile(body, world.context)
    assert [(call.verb, call.kind) for call in world.cluster.writes] == [
        ("apply", "AuthorizationPolicy"),
        ("patch_status", "PaymentService"),  # observedGeneration
    ]
    world.cluster.deliver(world.cache, held={"AuthorizationPolicy"})
    world.cluster.reset_calls()

    reconcile(world.latest(body), world.context)

    assert world.cluster.writes == []
    assert [event["reason"] for event in world.cluster.events] == []


@pytest.mark.parametrize(("before", "after"), [("Enforce", "Audit"), ("Audit", "Enforce")])
def test_switching_enforcement_is_the_owners_change_not_drift(before: str, after: str) -> None:
    world = World()
    body = world.settled("checkout", enforcement=before, driftPolicy="Report")

    def switch(spec: dict[str, Any]) -> None:
        spec["enforcement"] = after

    body = world.edit_spec(body, switch)
    world.run(body)

    reasons = {event["reason"] for event in world.cluster.events}
    assert not reasons & {"DriftReverted", "DriftDetected"}, reasons
    assert "Updated" in reasons  # the AuthorizationPolicies, dry-run or not
    in_sync = conditions(world.latest(body))["InSync"]
    assert (in_sync["status"], in_sync["reason"]) == ("True", "NoDrift")


def test_drift_names_the_manager_that_wrote_the_drifted_field() -> None:
    world = World()
    body = world.settled("checkout", driftPolicy="Revert")

    def tamper(live: dict[str, Any]) -> None:
        live["spec"]["mtls"]["mode"] = "PERMISSIVE"
        live["metadata"]["managedFields"] = [
            {"manager": "payguard", "operation": "Apply", "fieldsV1": {"f:spec": {"f:selector": {}}}},
            {
                "manager": "tamper-test",
                "operation": "Apply",
                "fieldsV1": {"f:spec": {"f:mtls": {"f:mode": {}}}},
            },
        ]

    world.cluster.edit("PeerAuthentication", "payments", "checkout-order-service", tamper)
    world.cluster.deliver(world.cache)

    world.run(world.latest(body))

    (reverted,) = events(world, "DriftReverted")
    assert "spec.mtls.mode (by tamper-test (Apply))" in reverted["note"]
    assert "by tamper-test (Apply)" in conditions(world.latest(body))["InSync"]["message"]
