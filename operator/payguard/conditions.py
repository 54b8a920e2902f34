"""Owns the status conditions: turns what a pass observed into Kubernetes-convention conditions (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from payguard.fights import Fight
from payguard.model import Enforcement, PaymentService
from payguard.outcome import ChildResult, Outcome
from payguard.posture.certificates import SEVERITY, CertificatePosture, CertificateReason
from payguard.posture.mesh import WorkloadMesh, named
from payguard.posture.mtls import MTLSPosture
from payguard.posture.privilege import Widening
from payguard.posture.trust import TrustDomainCheck


class ConditionType:
    READY = "Ready"
    MTLS_STRICT = "MTLSStrict"
    AUTHORIZATION_ENFORCED = "AuthorizationEnforced"
    NETWORK_ISOLATED = "NetworkIsolated"
    CERTIFICATES_READY = "CertificatesReady"
    IN_SYNC = "InSync"
    LEAST_PRIVILEGE = "LeastPrivilege"
    MESH_ENROLLED = "MeshEnrolled"


class Reason:
    # Ready: every other condition holds at the current generation.
    RECONCILED = "Reconciled"
    # The spec breaks a rule the CRD schema cannot express; the last good controls stay in place.
    INVALID_SPEC = "InvalidSpec"
    # An object payguard would write already exists and belongs to someone else; it is left untouched.
    NAME_CONFLICT = "NameConflict"
    # The API server refused a write (RBAC, validation, outage); the message names the object.
    APPLY_FAILED = "ApplyFailed"
    # enforcement: Audit; policies are rendered and reported (AuthorizationPolicies as dry-run), not enforced.
    AUDIT_MODE = "AuditMode"
    # Every generated policy is present and as rendered.
    APPLIED = "Applied"
    # MTLSStrict: the effective mode of every workload is STRICT.
    STRICT = "Strict"
    # MTLSStrict: some PeerAuthentication (or none at all) leaves a workload accepting plaintext.
    NOT_STRICT = "NotStrict"
    # InSync: live children match the rendered ones.
    NO_DRIFT = "NoDrift"
    # InSync: children had drifted and payguard restored them (driftPolicy: Revert).
    DRIFT_REVERTED = "DriftReverted"
    # InSync: children have drifted and are left as found (driftPolicy: Report).
    DRIFT_DETECTED = "DriftDetected"
    # InSync: the same child drifted 3 times within the fight window: another writer fights payguard.
    DRIFT_REPEATED = "DriftRepeated"
    # LeastPrivilege: nothing widens access to a managed workload.
    LEAST_PRIVILEGE = "LeastPrivilege"
    # LeastPrivilege: a foreign policy or a shared/default ServiceAccount widens access.
    PRIVILEGE_WIDENED = "PrivilegeWidened"
    # MeshEnrolled: every workload has pods, all in the mesh, under the declared ServiceAccount.
    IN_MESH = "InMesh"
    # MeshEnrolled: a workload's selector matches no live pod: its controls protect nothing.
    NO_MATCHING_PODS = "NoMatchingPods"
    # MeshEnrolled, MTLSStrict, AuthorizationEnforced: selected pods have neither a sidecar nor ambient
    # capture, so Istio enforces nothing on them; the message names them and why.
    PODS_OUTSIDE_MESH = "PodsOutsideMesh"
    # MeshEnrolled: a declared ServiceAccount does not exist.
    SERVICE_ACCOUNT_MISSING = "ServiceAccountMissing"
    # MeshEnrolled: pods run as another ServiceAccount than the declared one: callers' rules miss them.
    SERVICE_ACCOUNT_MISMATCH = "ServiceAccountMismatch"
    # MeshEnrolled: the mesh config's trustDomain and aliases do not include the PaymentService's.
    TRUST_DOMAIN_NOT_ACCEPTED = "TrustDomainNotAccepted"
    # AuthorizationEnforced: a methods/paths rule names a port Istio treats as opaque TCP/TLS.
    L7_RULE_IGNORED = "L7RuleIgnored"
    # AuthorizationEnforced: an ambient workload has methods/paths rules but no waypoint to enforce them.
    WAYPOINT_MISSING = "WaypointMissing"
    # AuthorizationEnforced: an ambient workload's pods name a waypoint of their own: it skips the L7 rules.
    WAYPOINT_BYPASS = "WaypointBypass"
    # Ready: at least one condition above is not True.
    NOT_READY = "NotReady"
    # Unknown: a kind this condition depends on cannot be observed (its CRD is not served, RBAC refuses
    # the list); the message names the CRD. Never True by default.
    NOT_OBSERVED = "NotObserved"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool | None  # None: Unknown, payguard cannot observe what it would need to judge
    reason: str
    message: str

    @property
    def status_text(self) -> str:
        return "Unknown" if self.status is None else str(self.status)

    def as_status(self, *, generation: int, transition_time: str) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": self.status_text,
            "reason": self.reason,
            "message": self.message[:MAX_MESSAGE_LENGTH],
            "observedGeneration": generation,
            "lastTransitionTime": transition_time,
        }


MAX_MESSAGE_LENGTH = 4096  # keeps status small; the Events carry the details
# Which failing condition explains Ready=False best, most urgent first.
_READY_PRIORITY = (
    ConditionType.IN_SYNC,
    ConditionType.MTLS_STRICT,
    ConditionType.MESH_ENROLLED,
    ConditionType.CERTIFICATES_READY,
    ConditionType.AUTHORIZATION_ENFORCED,
    ConditionType.NETWORK_ISOLATED,
    ConditionType.LEAST_PRIVILEGE,
)


def ready_condition(conditions: Sequence[Condition]) -> Condition:
    """Ready is True only when every other condition is; otherwise it names the failing ones."""
    failing = sorted(
        (c for c in conditions if not c.status),
        key=lambda c: _READY_PRIORITY.index(c.type) if c.type in _READY_PRIORITY else len(_READY_PRIORITY),
    )
    if not failing:
        return Condition(ConditionType.READY, True, Reason.RECONCILED, "Every zero-trust control holds")
    reasons = {c.reason for c in failing}
    for decisive in (Reason.NAME_CONFLICT, Reason.APPLY_FAILED, Reason.NOT_OBSERVED, Reason.AUDIT_MODE):
        if decisive in reasons:
            reason = decisive
            break
    else:
        reason = Reason.NOT_READY
    message = "; ".join(f"{c.type}: {c.message}" for c in failing)
    return Condition(ConditionType.READY, False, reason, message)


# The kinds each condition is judged from: when one cannot be observed, the condition is Unknown.
_OBSERVED_KINDS = {
    ConditionType.MTLS_STRICT: ("PeerAuthentication", "Pod", "Namespace"),
    ConditionType.AUTHORIZATION_ENFORCED: ("AuthorizationPolicy", "Pod", "Namespace", "Service"),
    ConditionType.MESH_ENROLLED: ("Pod", "Namespace", "ServiceAccount"),
    ConditionType.NETWORK_ISOLATED: ("NetworkPolicy",),
    ConditionType.CERTIFICATES_READY: ("Certificate", "CertificateRequest", "Issuer", "ClusterIssuer"),
    ConditionType.IN_SYNC: ("PeerAuthentication", "AuthorizationPolicy", "NetworkPolicy", "Certificate"),
    ConditionType.LEAST_PRIVILEGE: ("NetworkPolicy", "AuthorizationPolicy"),
}


def without_unobserved(conditions: Sequence[Condition], unobserved: Mapping[str, str]) -> list[Condition]:
    """Turns every condition judged from a kind payguard cannot observe into Unknown, naming why; then
    Ready again. What cannot be seen is never reported as holding."""
    if not unobserved:
        return list(conditions)
    judged = []
    for condition in conditions:
        blind = [unobserved[k] for k in _OBSERVED_KINDS.get(condition.type, ()) if k in unobserved]
        message = f"Cannot observe: {'; '.join(dict.fromkeys(blind))}"
        unknown = Condition(condition.type, None, Reason.NOT_OBSERVED, message)
        if condition.type != ConditionType.READY:
            judged.append(unknown if blind else condition)
    return [ready_condition(judged), *judged]


def invalid_spec_condition(message: str) -> Condition:
    return Condition(ConditionType.READY, False, Reason.INVALID_SPEC, message)


def merge_conditions(
    previous: Iterable[Mapping[str, Any]], current: Iterable[Condition], *, generation: int, now: datetime
) -> list[dict[str, Any]]:
    """Status conditions for this pass: lastTransitionTime moves only when a condition's status flips.

    Conditions of other types already in the status (e.g. set by a later pass kind) are kept as they are.
    """
    before = {c.get("type"): c for c in previous}
    timestamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    merged: dict[str, dict[str, Any]] = {}
    for condition in current:
        old = before.get(condition.type)
        status = condition.status_text
        transition = old["lastTransitionTime"] if old and old.get("status") == status else timestamp
        merged[condition.type] = condition.as_status(generation=generation, transition_time=transition)
    for kind, old in before.items():
        if kind not in merged and isinstance(kind, str):
            merged[kind] = dict(old)
    return [merged[kind] for kind in sorted(merged, key=_condition_order)]


def _condition_order(kind: str) -> tuple[int, str]:
    return (0 if kind == ConditionType.READY else 1, kind)


# --- from what a pass observed ---------------------------------------------------------------------


def build_conditions(
    service: PaymentService,
    children: Sequence[ChildResult],
    mtls: Sequence[MTLSPosture],
    widening: Sequence[Widening],
    certificates: Sequence[CertificatePosture],
    *,
    mesh: Sequence[WorkloadMesh],
    trust: TrustDomainCheck,
    fights: Sequence[Fight],
    previous: Mapping[str, Mapping[str, Any]],
    unenforced_l7: Sequence[str] = (),
    bypassed_l7: Sequence[str] = (),
) -> list[Condition]:
    audit = service.enforcement is Enforcement.AUDIT
    authorization = _policy_condition(
        ConditionType.AUTHORIZATION_ENFORCED, "AuthorizationPolicy", children, audit=audit
    )
    conditions = [
        _outside_mesh(mesh, _mtls_condition(mtls)),
        _mesh_condition(mesh, trust),
        _certificates_condition(certificates),
        _waypoint_findings(unenforced_l7, bypassed_l7, _ignored_l7(mesh, _outside_mesh(mesh, authorization))),
        _policy_condition(ConditionType.NETWORK_ISOLATED, "NetworkPolicy", children, audit=audit),
        _fight(fights) or _in_sync_condition(service, children, previous=previous.get(ConditionType.IN_SYNC)),
        _least_privilege_condition(widening),
    ]
    return [ready_condition(conditions), *conditions]


def _mtls_condition(mtls: Sequence[MTLSPosture]) -> Condition:
    weak = [p for p in mtls if not p.strict]
    if not weak:
        return Condition(ConditionType.MTLS_STRICT, True, Reason.STRICT, "Every workload requires mutual TLS")
    message = "; ".join(f"{p.workload}: {p.mode} ({p.detail})" for p in weak)
    return Condition(ConditionType.MTLS_STRICT, False, Reason.NOT_STRICT, message)


def _outside_mesh(mesh: Sequence[WorkloadMesh], judged: Condition) -> Condition:
    """A policy that holds is not True while a selected pod has no proxy to enforce it."""
    outside = [m for m in mesh if m.outside]
    if judged.status is not True or not outside:
        return judged
    message = "; ".join(_outside(m) for m in outside)
    return Condition(judged.type, False, Reason.PODS_OUTSIDE_MESH, f"Istio enforces nothing on {message}")


def _ignored_l7(mesh: Sequence[WorkloadMesh], judged: Condition) -> Condition:
    ignored = [f"{m.workload}: {finding}" for m in mesh for finding in m.ignored_l7]
    if judged.status is not True or not ignored:
        return judged
    return Condition(judged.type, False, Reason.L7_RULE_IGNORED, "; ".join(ignored))


def _waypoint_findings(missing: Sequence[str], bypassed: Sequence[str], judged: Condition) -> Condition:
    """L7 rules no waypoint enforces (those callers are denied) or a waypoint skips: never green."""
    for reason, findings in ((Reason.WAYPOINT_MISSING, missing), (Reason.WAYPOINT_BYPASS, bypassed)):
        if judged.status is True and findings:
            return Condition(judged.type, False, reason, "; ".join(findings))
    return judged


def _mesh_condition(mesh: Sequence[WorkloadMesh], trust: TrustDomainCheck) -> Condition:
    """Whether the controls reach pods that are in the mesh under the identity the policies trust."""
    findings = (
        (Reason.SERVICE_ACCOUNT_MISSING, [_account_missing(m) for m in mesh if m.account_missing]),
        (Reason.NO_MATCHING_PODS, [_no_pods(m) for m in mesh if m.pods == 0]),
        (Reason.PODS_OUTSIDE_MESH, [_outside(m) for m in mesh if m.outside]),
        (Reason.SERVICE_ACCOUNT_MISMATCH, [_other_accounts(m) for m in mesh if m.other_accounts]),
        (Reason.TRUST_DOMAIN_NOT_ACCEPTED, [trust.message] if trust.accepted is False else []),
    )
    for reason, messages in findings:
        if messages:
            return Condition(ConditionType.MESH_ENROLLED, False, reason, "; ".join(messages))
    pods = sum(m.pods for m in mesh)
    message = f"{pods} pods of {len(mesh)} workloads run in the mesh as their declared ServiceAccounts"
    return Condition(ConditionType.MESH_ENROLLED, True, Reason.IN_MESH, f"{message}; {trust.message}")


def _account_missing(mesh: WorkloadMesh) -> str:
    return f"{mesh.workload}: ServiceAccount {mesh.service_account} does not exist"


def _no_pods(mesh: WorkloadMesh) -> str:
    return f"{mesh.workload}: its selector matches no live pod, so its controls protect nothing"


def _outside(mesh: WorkloadMesh) -> str:
    pods = ", ".join(named(mesh.outside))
    return f"{mesh.workload}: {len(mesh.outside)} of {mesh.pods} pods outside the mesh: {pods}"


def _other_accounts(mesh: WorkloadMesh) -> str:
    pods = ", ".join(named(mesh.other_accounts))
    return f"{mesh.workload}: pods not running as {mesh.service_account}: {pods}"


def _certificates_condition(certificates: Sequence[CertificatePosture]) -> Condition:
    failing = sorted((c for c in certificates if not c.healthy), key=lambda c: SEVERITY.index(c.reason))
    if not failing:
        return Condition(
            ConditionType.CERTIFICATES_READY,
            True,
            CertificateReason.ISSUED,
            f"{len(certificates)} certificates issued and within policy",
        )
    message = "; ".join(f"{c.workload}: {c.reason} ({c.message})" for c in failing)
    return Condition(ConditionType.CERTIFICATES_READY, False, failing[0].reason, message)


def _policy_condition(
    condition_type: str, kind: str, results: Sequence[ChildResult], *, audit: bool
) -> Condition:
    children = [c for c in results if c.kind == kind]
    if audit:
        note = (
            "AuthorizationPolicies are dry-run"
            if kind == "AuthorizationPolicy"
            else "NetworkPolicies are not applied"
        )
        return Condition(condition_type, False, Reason.AUDIT_MODE, f"enforcement is Audit: {note}")
    for outcome, reason, text in (
        (
            Outcome.CONFLICT,
            Reason.NAME_CONFLICT,
            "exists and is not owned by this PaymentService; left untouched",
        ),
        (Outcome.FAILED, Reason.APPLY_FAILED, "could not be applied"),
        (Outcome.DRIFTED, Reason.DRIFT_DETECTED, "has drifted and is not as rendered"),
    ):
        hit = [c for c in children if c.outcome == outcome]
        if hit:
            details = "; ".join(f"{c.ref} {text}" + (f": {c.error}" if c.error else "") for c in hit)
            return Condition(condition_type, False, reason, details)
    return Condition(condition_type, True, Reason.APPLIED, f"{len(children)} {kind} present and as rendered")


def _fight(fights: Sequence[Fight]) -> Condition | None:
    """Another writer undoing payguard's repairs again and again: neither side wins, so it is not in sync."""
    if not fights:
        return None
    listing = "; ".join(
        f"{f.ref} drifted {f.drifts} times" + (f" by {', '.join(f.by)}" if f.by else "") for f in fights
    )
    return Condition(
        ConditionType.IN_SYNC,
        False,
        Reason.DRIFT_REPEATED,
        f"Another writer keeps changing what payguard repairs: {listing}; stop it, or leave the object "
        "to payguard",
    )


def _in_sync_condition(
    service: PaymentService, children: Sequence[ChildResult], *, previous: Mapping[str, Any] | None
) -> Condition:
    drifted = [c for c in children if c.outcome == Outcome.DRIFTED]
    if drifted:
        listing = "; ".join(f"{c.ref}: {c.drift.description}" for c in drifted)
        return Condition(
            ConditionType.IN_SYNC,
            False,
            Reason.DRIFT_DETECTED,
            f"Drift left in place (driftPolicy: Report): {listing}",
        )
    reverted = [c for c in children if c.outcome == Outcome.REVERTED]
    if reverted:
        listing = "; ".join(f"{c.ref}: {c.drift.description}" for c in reverted)
        return Condition(ConditionType.IN_SYNC, True, Reason.DRIFT_REVERTED, f"Reverted drift in {listing}")
    # The record of the last repair stays until the spec changes, so on-call can still read it.
    if (
        previous is not None
        and previous.get("reason") == Reason.DRIFT_REVERTED
        and previous.get("observedGeneration") == service.generation
    ):
        return Condition(ConditionType.IN_SYNC, True, Reason.DRIFT_REVERTED, str(previous.get("message", "")))
    return Condition(ConditionType.IN_SYNC, True, Reason.NO_DRIFT, "Every managed object is as rendered")


def _least_privilege_condition(widening: Sequence[Widening]) -> Condition:
    if not widening:
        return Condition(
            ConditionType.LEAST_PRIVILEGE,
            True,
            Reason.LEAST_PRIVILEGE,
            "Nothing widens access to a managed workload",
        )
    message = "; ".join(f"{w.object_ref}: {w.detail}" for w in widening)
    return Condition(ConditionType.LEAST_PRIVILEGE, False, widening[0].reason, message)
