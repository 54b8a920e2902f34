"""The PaymentService lifecycle without a cluster: the finalizer, deletionPolicy Retain and Delete, and a
new PaymentService adopting what a deleted one retained (whole passes against tests/fake_cluster.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pass_world import CHILD_KINDS, SERVICE, World, example
from payguard.kinds import (
    FINALIZER,
    RETAINED_AT_ANNOTATION,
    RETAINED_FROM_ANNOTATION,
    RETAINED_LABEL,
)
from payguard.lifecycle import ControlsUnobservable, finalize
from payguard.model import DeletionPolicy
from payguard.retention import deletion_policy

NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def deleted(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """The PaymentService as the API server holds it once someone deleted it: its finalizers wait."""
    metadata = body["metadata"]

    def mark(live: dict[str, Any]) -> None:
        live["metadata"]["deletionTimestamp"] = "2031-03-04T05:06:00Z"

    world.cluster.edit(SERVICE, metadata["namespace"], metadata["name"], mark)
    world.cluster.deliver(world.cache)
    return world.latest(body)


def run_finalize(world: World, body: dict[str, Any], *, terminating: bool = False) -> Any:
    world.cluster.reset_calls()
    done = finalize(
        body, cache=world.cache, cluster=world.cluster, now=NOW, namespace_terminating=terminating
    )
    world.cluster.deliver(world.cache)
    return done


def children(world: World) -> list[dict[str, Any]]:
    return [obj for kind in CHILD_KINDS for obj in world.cluster.stored(kind)]


def test_first_pass_puts_the_finalizer_on_before_any_control() -> None:
    world = World()
    body = world.create(example("checkout"))

    world.run(body)

    assert world.verbs()[0] == "json_patch"
    assert world.latest(body)["metadata"]["finalizers"] == [FINALIZER]


def test_retain_detaches_and_marks_every_control_then_releases_the_service() -> None:
    world = World()
    body = world.settled("checkout")
    before = {(c["kind"], c["metadata"]["name"]): c["spec"] for c in children(world)}

    done = run_finalize(world, deleted(world, body))

    assert done.policy is DeletionPolicy.RETAIN
    assert len(done.controls) == 16
    after = children(world)
    assert {(c["kind"], c["metadata"]["name"]): c["spec"] for c in after} == before
    for child in after:
        metadata = child["metadata"]
        assert metadata["ownerReferences"] == []
        assert metadata["labels"][RETAINED_LABEL] == "true"
        assert metadata["annotations"][RETAINED_FROM_ANNOTATION].startswith(
            "PaymentService payments/checkout"
        )
        assert metadata["annotations"][RETAINED_AT_ANNOTATION] == "2031-03-04T05:06:07Z"
    assert world.latest(body)["metadata"]["finalizers"] == []
    [event] = world.cluster.events
    assert event["reason"] == "Retained"
    assert "NetworkPolicy/checkout-order-service" in event["note"]


def test_a_pass_woken_before_the_watch_delivers_the_release_does_not_finalize_again() -> None:
    world = World()
    body = world.settled("checkout")
    marked = deleted(world, body)
    world.cluster.reset_calls()

    finalize(marked, cache=world.cache, cluster=world.cluster, now=NOW, namespace_terminating=False)
    # The watch has delivered nothing yet: the next pass reads the cache as payguard's own writes left it.
    latest = world.cache.get(SERVICE, namespace="payments", name="checkout")
    assert latest is not None
    writes = len(world.cluster.writes)
    again = finalize(latest, cache=world.cache, cluster=world.cluster, now=NOW, namespace_terminating=False)

    assert not again.finalizer_removed and again.controls == []
    assert len(world.cluster.writes) == writes
    assert [event["reason"] for event in world.cluster.events] == ["Retained"]


def test_delete_removes_every_control_and_says_so() -> None:
    world = World()
    body = world.settled("checkout", deletionPolicy="Delete")

    done = run_finalize(world, deleted(world, body))

    assert done.policy is DeletionPolicy.DELETE
    assert children(world) == []
    assert world.latest(body)["metadata"]["finalizers"] == []
    [event] = world.cluster.events
    assert (event["reason"], event["type"]) == ("Deleted", "Warning")


def test_retain_keeps_the_finalizer_while_a_kind_of_control_cannot_be_observed() -> None:
    world = World()
    body = world.settled("checkout")
    world.cache.set_unavailable("NetworkPolicy", "CustomResourceDefinition missing")

    with pytest.raises(ControlsUnobservable, match="NetworkPolicy"):
        run_finalize(world, deleted(world, body))

    assert world.latest(body)["metadata"]["finalizers"] == [FINALIZER]
    assert world.cluster.writes == []


def test_in_a_terminating_namespace_the_finalizer_goes_at_once_and_nothing_else_is_written() -> None:
    world = World()
    body = world.settled("checkout")

    run_finalize(world, deleted(world, body), terminating=True)

    assert [call.verb for call in world.cluster.calls] == ["json_patch"]
    assert world.latest(body)["metadata"]["finalizers"] == []


def successor_of(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """The deleted PaymentService gone, and a new one of the same name created (finalizer already on)."""
    metadata = body["metadata"]
    world.cluster.delete(
        kind=SERVICE, namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"]
    )
    again = example("checkout")
    again["metadata"]["finalizers"] = [FINALIZER]
    return world.create(again)


def test_a_new_service_of_the_same_name_adopts_the_retained_controls_with_one_write_each() -> None:
    world = World()
    body = world.settled("checkout")
    run_finalize(world, deleted(world, body))
    successor = successor_of(world, body)
    assert successor["metadata"]["uid"] != body["metadata"]["uid"]

    report = world.run(successor)

    assert len(world.cluster.calls_of("json_patch")) == 16
    assert world.cluster.calls_of("apply") == []
    for child in children(world):
        [owner] = child["metadata"]["ownerReferences"]
        assert owner["uid"] == successor["metadata"]["uid"]
        assert RETAINED_LABEL not in child["metadata"]["labels"]
        assert RETAINED_FROM_ANNOTATION not in child["metadata"]["annotations"]
    assert "Adopted" in {e["reason"] for e in world.cluster.events}
    assert report.writes == 16 + 1  # the adoptions and the status
    assert world.run(world.latest(successor)).writes == 0


def test_a_control_retained_from_another_payment_service_is_not_adopted() -> None:
    world = World()
    body = world.settled("checkout")
    run_finalize(world, deleted(world, body))
    successor = successor_of(world, body)
    world.cluster.edit(
        "NetworkPolicy",
        "payments",
        "checkout-order-service",
        lambda live: live["metadata"]["labels"].update({"payguard.dev/payment-service": "billing"}),
    )
    world.cluster.deliver(world.cache)

    world.run(successor)

    policy = world.cluster.get("NetworkPolicy", "payments", "checkout-order-service")
    assert policy is not None and policy["metadata"]["ownerReferences"] == []
    status = world.latest(successor)["status"]
    network = next(c for c in status["conditions"] if c["type"] == "NetworkIsolated")
    assert network["reason"] == "NameConflict"


@pytest.mark.parametrize(
    ("spec", "policy"),
    [
        ({}, DeletionPolicy.RETAIN),
        ({"deletionPolicy": "Delete"}, DeletionPolicy.DELETE),
        ({"deletionPolicy": "delete"}, DeletionPolicy.RETAIN),
        ({"deletionPolicy": 3}, DeletionPolicy.RETAIN),
    ],
)
def test_anything_but_an_exact_delete_reads_as_retain(spec: dict[str, Any], policy: DeletionPolicy) -> None:
    assert deletion_policy({"spec": spec}) is policy
