"""Owns the status conditions: turns what a pass observed into Kubernetes-convention conditions (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class ConditionType:
    READY = "Ready"
    MTLS_STRICT = "MTLSStrict"
    AUTHORIZATION_ENFORCED = "AuthorizationEnforced"
    NETWORK_ISOLATED = "NetworkIsolated"
    CERTIFICATES_READY = "CertificatesReady"
    IN_SYNC = "InSync"
    LEAST_PRIVILEGE = "LeastPrivilege"


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
    # LeastPrivilege: nothing widens access to a managed workload.
    LEAST_PRIVILEGE = "LeastPrivilege"
    # LeastPrivilege: a foreign policy or a shared/default ServiceAccount widens access.
    PRIVILEGE_WIDENED = "PrivilegeWidened"
    # Ready: at least one condition above is not True.
    NOT_READY = "NotReady"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str

    def as_status(self, *, generation: int, transition_time: str) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": "True" if self.status else "False",
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
    for decisive in (Reason.NAME_CONFLICT, Reason.APPLY_FAILED, Reason.AUDIT_MODE):
        if decisive in reasons:
            reason = decisive
            break
    else:
        reason = Reason.NOT_READY
    message = "; ".join(f"{c.type}: {c.message}" for c in failing)
    return Condition(ConditionType.READY, False, reason, message)


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
        status = "True" if condition.status else "False"
        transition = old["lastTransitionTime"] if old and old.get("status") == status else timestamp
        merged[condition.type] = condition.as_status(generation=generation, transition_time=transition)
    for kind, old in before.items():
        if kind not in merged and isinstance(kind, str):
            merged[kind] = dict(old)
    return [merged[kind] for kind in sorted(merged, key=_condition_order)]


def _condition_order(kind: str) -> tuple[int, str]:
    return (0 if kind == ConditionType.READY else 1, kind)
