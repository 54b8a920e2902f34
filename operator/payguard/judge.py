"""Owns the third step of a pass, pure: from what was observed and done, the posture, the conditions, the
status to write and the Events to post. No I/O, no clock: `now` is passed in."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payguard.conditions import (
    Condition,
    ConditionType,
    Reason,
    build_conditions,
    merge_conditions,
    without_unobserved,
)
from payguard.fights import Fight, ObjectKey
from payguard.kinds import AUTHORIZATION_POLICIES, MESH_CONFIGS, NETWORK_POLICIES, PEER_AUTHENTICATIONS
from payguard.model import Enforcement, PaymentService
from payguard.outcome import ChildResult, Outcome
from payguard.posture.certificates import (
    CertificatePosture,
    CertificateReason,
    assess_certificate,
    next_change,
)
from payguard.posture.mesh import WorkloadMesh, mesh_posture
from payguard.posture.mtls import MTLSPosture, effective_mtls
from payguard.posture.privilege import least_privilege_findings, namespace_wide_callers
from payguard.posture.requests import RequestPair, pair_requests
from payguard.posture.trust import trust_domain_check
from payguard.posture.waypoints import l7_bypassing_waypoint, l7_without_waypoint
from payguard.render.certificates import certificate_secret_name
from payguard.render.metadata import ChildKind
from payguard.snapshot import Snapshot


@dataclass(frozen=True)
class Judgement:
    """What holds for a PaymentService after a pass."""

    conditions: tuple[Condition, ...]
    certificates: tuple[CertificatePosture, ...]
    summaries: Mapping[str, Any]
    # When a certificate's posture next changes by the clock alone, so the caller can wake up then.
    next_certificate_change: datetime | None


@dataclass(frozen=True)
class EventNote:
    """One Event a pass posts: one per kind of thing it did, naming every object."""

    warning: bool
    reason: str
    action: str
    note: str


def judge(
    service: PaymentService,
    body: Mapping[str, Any],
    snapshot: Snapshot,
    children: Sequence[ChildResult],
    *,
    mesh_root_namespace: str,
    mesh_config_name: str,
    fights: Sequence[Fight],
    now: datetime,
) -> Judgement:
    """`snapshot` is the one the pass left (its own writes included)."""
    mtls = effective_mtls(
        service, snapshot.of_kind(PEER_AUTHENTICATIONS.kind), mesh_root_namespace=mesh_root_namespace
    )
    widening = least_privilege_findings(
        service,
        network_policies=snapshot.of_kind(NETWORK_POLICIES.kind),
        authorization_policies=snapshot.of_kind(AUTHORIZATION_POLICIES.kind),
        other_services=list(snapshot.other_services),
        mesh_root_namespace=mesh_root_namespace,
        dataplanes=snapshot.dataplanes,
    )
    certificates = certificate_postures(service, snapshot, now=now)
    changes = [next_change(c, service.certificates, now=now) for c in certificates]
    mesh = mesh_posture(
        service,
        pods=snapshot.pods,
        namespace=snapshot.namespace,
        service_accounts=snapshot.service_accounts,
        services=snapshot.services,
    )
    trust = trust_domain_check(
        service.trust_domain,
        snapshot.mesh_config,
        where=f"{mesh_root_namespace}/{mesh_config_name}",
        unreadable=snapshot.unobserved.get(MESH_CONFIGS.kind),
    )
    conditions = without_unobserved(
        build_conditions(
            service,
            children,
            mtls,
            widening,
            certificates,
            mesh=mesh,
            trust=trust,
            fights=fights,
            previous=previous_conditions(body),
            unenforced_l7=l7_without_waypoint(service, snapshot.dataplanes),
            bypassed_l7=l7_bypassing_waypoint(service, snapshot.dataplanes),
        ),
        snapshot.unobserved,
    )
    return Judgement(
        conditions=tuple(conditions),
        certificates=tuple(certificates),
        summaries=_summaries(
            service, children, mtls, certificates, () if "Pod" in snapshot.unobserved else mesh
        ),
        next_certificate_change=min((c for c in changes if c is not None), default=None),
    )


def requests_unobserved(service: PaymentService, snapshot: Snapshot) -> bool:
    """Whether a workload's Certificate names a revision whose request the snapshot has not seen signed."""
    return any(
        _requests(service, snapshot, service.child_name(workload)).current_unobserved
        for workload in service.workloads
    )


def _requests(service: PaymentService, snapshot: Snapshot, name: str) -> RequestPair:
    certificate = snapshot.namespace_objects.get(("Certificate", service.namespace, name))
    return pair_requests(snapshot.certificate_requests, certificate_name=name, certificate=certificate)


def certificate_postures(
    service: PaymentService, snapshot: Snapshot, *, now: datetime
) -> list[CertificatePosture]:
    """Each workload's certificate, judged from public API data only (never a Secret)."""
    postures = []
    for workload in service.workloads:
        name = service.child_name(workload)
        certificate = snapshot.namespace_objects.get(("Certificate", service.namespace, name))
        postures.append(
            assess_certificate(
                workload=workload.name,
                name=name,
                secret_name=certificate_secret_name(service, workload),
                policy=service.certificates,
                expected_uri=service.principal_of(workload).spiffe_id(service.trust_domain),
                certificate=certificate,
                requests=_requests(service, snapshot, name),
                issuer=snapshot.issuer,
                now=now,
            )
        )
    return postures


def event_notes(
    children: Sequence[ChildResult], pruned: Sequence[str], *, fighting: Collection[ObjectKey] = ()
) -> list[EventNote]:
    """One Event per kind of thing a pass did or was refused; quiet passes post none.

    One per kind rather than one per object: a new PaymentService would otherwise double its writes.
    Reverts of a child in a fight (`fighting`) are left out: InSync's DriftRepeated tells the fight once.
    """
    created = [c.ref for c in children if c.outcome == Outcome.CREATED]
    updated = [c.ref for c in children if c.outcome == Outcome.UPDATED]
    adopted = [c.ref for c in children if c.outcome == Outcome.ADOPTED]
    reverted = [
        f"{c.ref}: {c.drift.description}"
        for c in children
        if c.outcome == Outcome.REVERTED and c.key not in fighting
    ]
    failed = [c.error for c in children if c.outcome == Outcome.FAILED]
    notes = []
    for items, warning, reason, action, verb in (
        (created, False, "Created", "Apply", "Created"),
        (updated, False, "Updated", "Apply", "Applied the changed spec to"),
        (adopted, False, "Adopted", "Adopt", "Adopted retained"),
        (reverted, True, "DriftReverted", "Repair", "Reverted drift in"),
        (failed, True, "ApplyFailed", "Apply", "Failed:"),
        (pruned, False, "Pruned", "Delete", "Deleted"),
    ):
        if items:
            notes.append(EventNote(warning, reason, action, f"{verb} {'; '.join(items)}"))
    return notes


# States that are chosen (Audit) or expected for a while (a certificate being issued): not problems.
_NOT_PROBLEMS = frozenset({Reason.AUDIT_MODE, CertificateReason.PENDING})
RECOVERED = "Recovered"  # the Normal Event's reason when a condition holds again


def condition_notes(
    previous: Mapping[str, Mapping[str, Any]],
    conditions: Sequence[Condition],
    *,
    told: Iterable[str] = (),
) -> list[EventNote]:
    """One Warning per problem that appeared (a condition turned False or Unknown, or its reason changed),
    one Normal when conditions hold again; reasons the pass's own Events `told` already are left out, and
    conditions failing for the same reason share one Event. `Ready` only speaks for an invalid spec:
    every other problem has its own condition, and one problem must make one Event."""
    notes = _condition_transitions(previous, conditions)
    merged: dict[tuple[bool, str], list[str]] = {}
    for note in notes:
        if note.reason not in told:
            merged.setdefault((note.warning, note.reason), []).append(note.note)
    return [
        EventNote(warning, reason, "Judge", "; ".join(texts)) for (warning, reason), texts in merged.items()
    ]


def _condition_transitions(
    previous: Mapping[str, Mapping[str, Any]], conditions: Sequence[Condition]
) -> list[EventNote]:
    notes = []
    for condition in conditions:
        before = previous.get(condition.type) or {}
        if condition.type == ConditionType.READY:
            if Reason.INVALID_SPEC not in (condition.reason, before.get("reason")):
                continue
            if condition.reason != Reason.INVALID_SPEC:  # valid again: whatever else Ready says has its own
                notes.append(EventNote(False, RECOVERED, "Judge", "The spec is valid again"))
                continue
        was_problem = (
            before.get("status") in ("False", "Unknown") and before.get("reason") not in _NOT_PROBLEMS
        )
        if condition.status is True:
            if was_problem:
                text = f"{condition.type} holds again ({condition.reason}): {condition.message}"
                notes.append(EventNote(False, RECOVERED, "Judge", text))
            continue
        if condition.reason in _NOT_PROBLEMS:
            continue
        if was_problem and before.get("reason") == condition.reason:
            continue  # the same problem, still
        text = f"{condition.type} is {condition.status_text} ({condition.reason}): {condition.message}"
        notes.append(EventNote(True, condition.reason, "Judge", text))
    return notes


def status_patch(
    body: Mapping[str, Any],
    conditions: Sequence[Condition],
    *,
    summaries: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any] | None:
    """The status to write, or None when the live status already says all of it."""
    current = body.get("status") or {}
    generation = int(body["metadata"].get("generation", 0))
    status: dict[str, Any] = {
        **summaries,
        "observedGeneration": generation,
        "conditions": merge_conditions(
            current.get("conditions") or [], conditions, generation=generation, now=now
        ),
    }
    if all(current.get(key) == value for key, value in status.items()):
        return None
    return status


def previous_conditions(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c.get("type", ""): c for c in (body.get("status") or {}).get("conditions") or []}


# A state, not what this pass did, so a quiet pass leaves the status untouched.
_CHILD_STATE = {
    Outcome.CREATED: "Applied",
    Outcome.UPDATED: "Applied",
    Outcome.UNCHANGED: "Applied",
    Outcome.REVERTED: "Applied",
    Outcome.ADOPTED: "Applied",
    Outcome.UPDATED: "Applied",
}
_MAX_FINDINGS = 32  # the CRD's maxItems for status.workloads[].findings: one more and the status is refused
_SUMMARY_FIELDS = {AUTHORIZATION_POLICIES.kind: "authorization", NETWORK_POLICIES.kind: "network"}


def _summaries(
    service: PaymentService,
    children: Sequence[ChildResult],
    mtls: Sequence[MTLSPosture],
    certificates: Sequence[CertificatePosture],
    mesh: Sequence[WorkloadMesh],
) -> dict[str, Any]:
    by_workload: dict[str, dict[str, Any]] = {w.name: {"name": w.name} for w in service.workloads}
    for found in mesh:
        by_workload[found.workload]["mesh"] = found.summary()
    for certificate in certificates:
        by_workload[certificate.workload]["certificate"] = certificate.summary()
    for posture in mtls:
        by_workload[posture.workload]["mtls"] = posture.mode
    for workload in service.workloads:
        findings = namespace_wide_callers(workload)
        if len(findings) > _MAX_FINDINGS:  # break-glass callers come on top of the spec's 32
            findings = [*findings[: _MAX_FINDINGS - 1], f"and {len(findings) - _MAX_FINDINGS + 1} more"]
        if findings:
            by_workload[workload.name]["findings"] = findings
    for child in children:
        field_name = _SUMMARY_FIELDS.get(child.kind)
        state = _CHILD_STATE.get(child.outcome, child.outcome)
        # Two policies of a kind (ambient: ztunnel's and the waypoint's): a problem outranks Applied.
        if field_name and by_workload[child.workload].get(field_name, "Applied") == "Applied":
            by_workload[child.workload][field_name] = state
    return {
        "workloadCount": len(service.workloads),
        "pciScope": service.pci_scope.value,
        "pciRequirements": pci_requirements_in_place(service, children),
        "workloads": list(by_workload.values()),
    }


_IN_PLACE = frozenset(
    {Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.REVERTED, Outcome.ADOPTED}
)


def pci_requirements_in_place(service: PaymentService, children: Sequence[ChildResult]) -> list[str]:
    """The PCI-DSS requirements supported by controls that are in place as rendered: every object of the
    kind is, and it enforces (Audit's dry-run AuthorizationPolicies support nothing)."""
    by_kind: dict[str, list[ChildResult]] = {}
    for child in children:
        by_kind.setdefault(child.kind, []).append(child)
    supported: set[str] = set()
    for kind, objects in by_kind.items():
        if kind == ChildKind.AUTHORIZATION_POLICY and service.enforcement is Enforcement.AUDIT:
            continue
        if all(child.outcome in _IN_PLACE for child in objects):
            supported.update(ChildKind(kind).pci_requirements)
    return sorted(supported, key=lambda requirement: tuple(int(p) for p in requirement.split(".")))
