"""Owns the record of what one pass did to each desired child (pure data)."""

from __future__ import annotations

from dataclasses import dataclass

from payguard.drift import Drift

NO_DRIFT = Drift()


class Outcome:
    """What happened to one desired child in a pass."""

    CREATED = "Created"
    UPDATED = "Updated"  # rendered from an older spec (the owner changed it): applied, never drift
    UNCHANGED = "Unchanged"
    REVERTED = "Reverted"
    UPDATED = "Updated"  # a break-glass exception started or ended: applied on purpose, not drift
    ADOPTED = "Adopted"  # retained from a deleted PaymentService of this name, now this one's again
    DRIFTED = "Drifted"  # drift left in place (driftPolicy: Report)
    CONFLICT = "Conflict"  # a foreign object holds the name
    FAILED = "Failed"
    UNOBSERVED = "Unobserved"  # its kind cannot be observed, so nothing was written


@dataclass(frozen=True)
class ChildResult:
    kind: str
    namespace: str
    name: str
    workload: str
    outcome: str
    drift: Drift = NO_DRIFT
    error: str = ""

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)
