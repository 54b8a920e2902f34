"""pciScope and the PCI-DSS requirements land in status for auditors: only requirements whose controls are
in place as rendered and enforcing."""

from __future__ import annotations

from pass_world import World, example
from payguard.judge import pci_requirements_in_place
from payguard.model import Enforcement
from payguard.outcome import ChildResult, Outcome
from payguard.render.metadata import ChildKind
from payguard.spec import parse_payment_service


def test_a_settled_service_reports_its_scope_and_every_requirement_its_controls_support() -> None:
    world = World()
    status = world.settled("checkout")["status"]

    assert status["pciScope"] == "cde"
    assert status["pciRequirements"] == [
        "1.2.1",
        "1.3.1",
        "1.3.2",
        "3.6.1",
        "4.2.1",
        "7.2.1",
        "7.2.2",
        "8.3.2",
    ]


def _result(kind: ChildKind, outcome: str) -> ChildResult:
    return ChildResult(kind.value, "payments", f"checkout-{outcome.lower()}", "api-gateway", outcome)


def test_a_kind_with_one_object_not_in_place_supports_nothing() -> None:
    service = parse_payment_service(example("checkout"))
    children = [
        _result(ChildKind.NETWORK_POLICY, Outcome.UNCHANGED),
        _result(ChildKind.NETWORK_POLICY, Outcome.CONFLICT),  # a foreign object holds the name
        _result(ChildKind.PEER_AUTHENTICATION, Outcome.DRIFTED),  # left drifted under Report
        _result(ChildKind.CERTIFICATE, Outcome.REVERTED),
    ]

    assert pci_requirements_in_place(service, children) == ["3.6.1", "4.2.1", "8.3.2"]


def test_dry_run_authorization_policies_under_audit_support_nothing() -> None:
    service = parse_payment_service(example("checkout", enforcement="Audit"))
    assert service.enforcement is Enforcement.AUDIT

    assert (
        pci_requirements_in_place(service, [_result(ChildKind.AUTHORIZATION_POLICY, Outcome.UNCHANGED)]) == []
    )
