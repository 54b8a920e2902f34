"""Problems are told, once: a condition that turns False or Unknown (or changes reason) posts one Warning
Event and logs one WARNING line; when it holds again, one Normal Event. Whole passes on the fake cluster;
the integration suite repeats them on a real API server."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pass_world import World, events, example
from payguard.conditions import Condition
from payguard.judge import RECOVERED, condition_notes


def set_mode(mode: str) -> Any:
    def change(live: dict[str, Any]) -> None:
        live["spec"]["mtls"]["mode"] = mode

    return change


def test_a_weakened_mtls_under_report_is_one_warning_and_one_log_line_then_recovery_is_normal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World()
    body = world.settled("checkout", driftPolicy="Report")
    world.cluster.edit("PeerAuthentication", "payments", "checkout-order-service", set_mode("PERMISSIVE"))
    world.cluster.deliver(world.cache)

    caplog.clear()  # the first pass told of the missing issuer
    with caplog.at_level(logging.WARNING, logger="payguard"):
        world.run(world.latest(body))

    reasons = [(e["type"], e["reason"]) for e in world.cluster.events]
    assert reasons == [("Warning", "NotStrict"), ("Warning", "DriftDetected")], reasons
    (drift,) = events(world, "DriftDetected")  # InSync and MTLSStrict's drift share one Event
    assert "PeerAuthentication/checkout-order-service: spec.mtls.mode" in drift["note"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("PaymentService payments/checkout: MTLSStrict is False (NotStrict)")
    assert caplog.records[0].fields == {
        "kind": "PaymentService",
        "namespace": "payments",
        "name": "checkout",
        "reason": "NotStrict",
    }

    world.run(world.latest(body))  # the same problems, still: nothing new to tell

    assert world.cluster.events == []

    world.cluster.edit("PeerAuthentication", "payments", "checkout-order-service", set_mode("STRICT"))
    world.cluster.deliver(world.cache)
    world.run(world.latest(body))

    (recovered,) = world.cluster.events
    assert (recovered["type"], recovered["reason"]) == ("Normal", RECOVERED)
    assert "MTLSStrict holds again (Strict)" in recovered["note"]
    assert "InSync holds again (NoDrift)" in recovered["note"]


def test_a_certificate_being_issued_is_not_a_problem_and_an_audit_choice_is_not_either() -> None:
    previous: dict[str, dict[str, Any]] = {}
    pending = Condition("CertificatesReady", False, "Pending", "has no signed certificate yet")
    audit = Condition("NetworkIsolated", False, "AuditMode", "enforcement is Audit")

    assert condition_notes(previous, [pending, audit]) == []


def test_a_new_reason_for_a_failing_condition_is_a_new_warning_and_ready_speaks_only_for_the_spec() -> None:
    previous = {
        "CertificatesReady": {"status": "False", "reason": "IssuerNotReady"},
        "Ready": {"status": "False", "reason": "NotReady"},
    }
    expired = Condition("CertificatesReady", False, "Expired", "api-gateway: expired")
    ready = Condition("Ready", False, "NotReady", "CertificatesReady: ...")

    (note,) = condition_notes(previous, [ready, expired])

    assert (note.warning, note.reason) == (True, "Expired")


def test_an_invalid_spec_is_told_and_so_is_its_repair() -> None:
    invalid = Condition("Ready", False, "InvalidSpec", "spec.workloads[1].callers[2].workload: unknown")

    (told,) = condition_notes({}, [invalid])
    (repaired,) = condition_notes(
        {"Ready": {"status": "False", "reason": "InvalidSpec"}},
        [Condition("Ready", False, "NotReady", "...")],
    )

    assert (told.warning, told.reason) == (True, "InvalidSpec")
    assert (repaired.warning, repaired.reason, repaired.note) == (False, RECOVERED, "The spec is valid again")


def test_a_refused_write_is_told_by_its_own_event_only() -> None:
    world = World()
    world.cluster.refuse_apply("NetworkPolicy", status=403, message="networkpolicies is forbidden")
    body = world.create(example("checkout"))

    world.run(body)

    assert len(events(world, "ApplyFailed")) == 1
