"""Break-glass exceptions without a cluster: what an active exception adds (exactly its allowance), what
is refused and why (naming the exception's field), the Events of start and end, and whole passes that
apply an exception and take it out again when it ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pass_world import World, example
from payguard import metrics
from payguard.breakglass import (
    ACTIVE,
    REFUSED,
    STATUS_LIMIT,
    exception_notes,
    merge_exceptions,
    read_exception,
    status_entries,
)
from payguard.drift import detect_drift
from payguard.kinds import EXCEPTIONS_ANNOTATION, PAYMENT_SERVICE_EXCEPTIONS, RENDERED_HASH_ANNOTATION
from payguard.platform import Platform
from payguard.render import render_children
from payguard.spec import parse_payment_service

CREATED = datetime(2031, 3, 4, 5, 0, 0, tzinfo=UTC)
DURING = CREATED + timedelta(seconds=30)
AFTER = CREATED + timedelta(minutes=1)
SUPPORT = {
    "principal": {"namespace": "support", "serviceAccount": "debugger"},
    "ports": [8443],
    "methods": ["GET"],
}


def exception_body(
    name: str = "incident-4711", *, workload: str = "order-service", **allow: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "payguard.dev/v1alpha1",
        "kind": "PaymentServiceException",
        "metadata": {
            "name": name,
            "namespace": "payments",
            "creationTimestamp": CREATED.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spec": {
            "paymentService": "checkout",
            "workload": workload,
            "allow": allow or {"caller": SUPPORT},
            "reason": "INC-4711: authorisations failing",
            "ticket": "INC-4711",
            "requestedBy": "alice",
            "duration": "1m",
        },
    }


def rendered(service: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["kind"], m["metadata"]["name"]): m for m in render_children(service, platform=Platform())}


def merged(*bodies: dict[str, Any], now: datetime = DURING) -> Any:
    body = example("checkout")
    service = parse_payment_service(body)
    exceptions = [e for e in map(read_exception, bodies) if e is not None]
    return merge_exceptions(body, service, exceptions, now=now)


def changed_paths(merge: Any) -> dict[tuple[str, str], tuple[str, ...]]:
    """Per rendered object: the field paths an exception changed (drift of the base against the merged),
    besides the rendered-hash annotation, which follows every change of the rendering by design."""
    base = rendered(parse_payment_service(example("checkout")))
    widened = rendered(merge.service)
    return {
        key: tuple(
            p for p in detect_drift(base[key], widened[key]).paths if RENDERED_HASH_ANNOTATION not in p
        )
        for key in base
        if base[key] != widened[key]
    }


def test_an_active_caller_exception_adds_exactly_one_rule_to_the_workloads_policies() -> None:
    merge = merged(exception_body())

    assert changed_paths(merge) == {
        ("AuthorizationPolicy", "checkout-order-service"): ("spec.rules",),
        ("NetworkPolicy", "checkout-order-service"): ("spec.ingress",),
    }
    base = rendered(parse_payment_service(example("checkout")))
    widened = rendered(merge.service)
    key = ("AuthorizationPolicy", "checkout-order-service")
    assert widened[key]["spec"]["rules"][:-1] == base[key]["spec"]["rules"]
    assert widened[key]["spec"]["rules"][-1] == {
        "from": [{"source": {"principals": ["cluster.local/ns/support/sa/debugger"]}}],
        "to": [{"operation": {"ports": ["8443"], "methods": ["GET"]}}],
    }
    assert merge.next_end == AFTER


def test_an_egress_exception_adds_exactly_one_network_policy_rule() -> None:
    merge = merged(exception_body(egress={"cidr": "198.51.100.0/24", "ports": [443]}))

    assert changed_paths(merge) == {("NetworkPolicy", "checkout-order-service"): ("spec.egress",)}


@pytest.mark.parametrize("now", [CREATED - timedelta(seconds=1), AFTER, AFTER + timedelta(hours=1)])
def test_an_exception_outside_its_time_adds_nothing(now: datetime) -> None:
    merge = merged(exception_body(), now=now)

    assert changed_paths(merge) == {}
    assert merge.active == [] and merge.next_end is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (exception_body(workload="ledger"), "spec.workload: PaymentService has no workload named 'ledger'"),
        (
            exception_body(caller={"workload": "fraud-engine", "ports": [7777]}),
            "spec.allow.caller.ports",
        ),
        (
            exception_body(caller={"workload": "order-service", "ports": [8443]}),
            "spec.allow.caller.workload: a workload must not list itself as a caller",
        ),
        (exception_body(egress={"cidr": "10.0.0.0/8", "ports": [443]}), "spec.allow.egress.cidr"),
    ],
    ids=["unknown-workload", "undeclared-port", "itself", "too-broad"],
)
def test_an_allowance_the_spec_could_not_declare_is_refused_naming_the_field(
    body: dict[str, Any], fragment: str
) -> None:
    merge = merged(body)

    assert changed_paths(merge) == {}
    [(_item, message)] = merge.refused
    assert fragment in message
    [entry] = status_entries(merge)
    assert entry["state"] == REFUSED and fragment in entry["message"]


def test_status_lists_who_what_why_and_until_when() -> None:
    [entry] = status_entries(merged(exception_body()))

    assert entry == {
        "name": "incident-4711",
        "workload": "order-service",
        "allows": "caller principal support/debugger ports 8443 methods GET",
        "reason": "INC-4711: authorisations failing",
        "ticket": "INC-4711",
        "requestedBy": "alice",
        "expiresAt": "2031-03-04T05:01:00Z",
        "state": ACTIVE,
    }


def test_events_say_when_an_exception_starts_ends_or_is_deleted() -> None:
    started = exception_notes([], merged(exception_body()), existing={"incident-4711"}, now=DURING)
    assert [(n.reason, n.warning) for n in started] == [("ExceptionActivated", True)]
    assert "until 2031-03-04T05:01:00Z (ticket INC-4711, requested by alice)" in started[0].note

    previous = status_entries(merged(exception_body()))
    assert exception_notes(previous, merged(exception_body()), existing={"incident-4711"}, now=DURING) == []
    [ended] = exception_notes(
        previous, merged(exception_body(), now=AFTER), existing={"incident-4711"}, now=AFTER
    )
    assert (ended.reason, ended.warning) == ("ExceptionExpired", False)
    assert "incident-4711 expired at 2031-03-04T05:01:00Z" in ended.note
    # payguard down at the end: the Event tells both the recorded end and when the allowance really went.
    late = AFTER + timedelta(hours=1)
    [ended_late] = exception_notes(
        previous, merged(exception_body(), now=late), existing={"incident-4711"}, now=late
    )
    assert ended_late.note.endswith(
        "expired at 2031-03-04T05:01:00Z; its allowance is removed at 2031-03-04T06:01:00Z"
    )
    [gone] = exception_notes(previous, merged(now=DURING), existing=set(), now=DURING)
    assert "was deleted" in gone.note


def test_a_pass_applies_an_active_exception_and_removes_it_when_it_ends() -> None:
    clock = [DURING]
    world = World(clock=lambda: clock[0])
    body = world.settled("checkout")
    world.cache.put(PAYMENT_SERVICE_EXCEPTIONS.kind, exception_body())
    base_policy = world.cluster.get("AuthorizationPolicy", "payments", "checkout-order-service")
    assert base_policy is not None

    report = world.run(world.latest(body))

    assert report.next_exception_end == AFTER
    widened = world.cluster.get("AuthorizationPolicy", "payments", "checkout-order-service")
    assert widened is not None
    assert len(widened["spec"]["rules"]) == len(base_policy["spec"]["rules"]) + 1
    assert widened["metadata"]["annotations"][EXCEPTIONS_ANNOTATION] == "incident-4711"
    assert {e["reason"] for e in world.cluster.events} >= {"ExceptionActivated"}
    assert metrics.ACTIVE_EXCEPTIONS.labels("payments", "checkout")._value.get() == 1
    [entry] = world.latest(body)["status"]["exceptions"]
    assert entry["state"] == ACTIVE

    clock[0] = AFTER
    report = world.run(world.latest(body))

    assert report.next_exception_end is None
    restored = world.cluster.get("AuthorizationPolicy", "payments", "checkout-order-service")
    assert restored is not None and restored["spec"] == base_policy["spec"]
    assert "ExceptionExpired" in {e["reason"] for e in world.cluster.events}
    assert metrics.ACTIVE_EXCEPTIONS.labels("payments", "checkout")._value.get() == 0
    assert world.latest(body)["status"]["exceptions"] == []


def test_the_example_exception_widens_only_order_service_of_the_checkout_example() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "exceptions" / "incident-4711.yaml"
    body = yaml.safe_load(path.read_text())
    body["metadata"]["creationTimestamp"] = CREATED.strftime("%Y-%m-%dT%H:%M:%SZ")

    merge = merged(body)

    assert [item.name for item in merge.active] == ["incident-4711"] and merge.refused == []
    assert changed_paths(merge) == {
        ("AuthorizationPolicy", "checkout-order-service"): ("spec.rules",),
        ("NetworkPolicy", "checkout-order-service"): ("spec.ingress",),
    }
    assert merge.next_end == CREATED + timedelta(hours=2)


def test_an_exception_is_applied_and_removed_under_drift_policy_report_too() -> None:
    clock = [DURING]
    world = World(clock=lambda: clock[0])
    body = world.settled("checkout", driftPolicy="Report")
    world.cache.put(PAYMENT_SERVICE_EXCEPTIONS.kind, exception_body())
    base = world.cluster.get("AuthorizationPolicy", "payments", "checkout-order-service")
    assert base is not None

    world.run(world.latest(body))
    widened = world.cluster.get("AuthorizationPolicy", "payments", "checkout-order-service")
    clock[0] = AFTER
    world.run(world.latest(body))

    assert widened is not None and len(widened["spec"]["rules"]) == len(base["spec"]["rules"]) + 1
    restored = world.cluster.get("AuthorizationPolicy", "payments", "checkout-order-service")
    assert restored is not None and restored["spec"] == base["spec"]
    assert "DriftDetected" not in {e["reason"] for e in world.cluster.events}


def test_status_keeps_within_the_crds_limit_and_every_active_exception_stays_listed() -> None:
    crd = yaml.safe_load((Path(__file__).parents[2] / "crds" / "paymentservice.yaml").read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["properties"]["exceptions"]["maxItems"] == STATUS_LIMIT
    refused = [exception_body(f"refused-{i:02}", workload="nobody") for i in range(STATUS_LIMIT)]
    active = [exception_body(f"active-{i}") for i in range(3)]
    merge = merged(*refused, *active)
    assert (len(merge.active), len(merge.refused)) == (3, STATUS_LIMIT)

    entries = status_entries(merge)

    assert len(entries) == STATUS_LIMIT
    assert [e["name"] for e in entries if e["state"] == ACTIVE] == ["active-0", "active-1", "active-2"]
    assert [e["name"] for e in entries] == sorted(e["name"] for e in entries)
