"""Owns break-glass exceptions (pure): which PaymentServiceExceptions are active, what they add to a
PaymentService, how they are listed in its status, the Events their start and end earn, and when the
next one ends.

An exception is merged into the PaymentService body as one more caller or egress rule of its workload,
and the merged body is parsed by the one PaymentService parser: an allowance the spec itself could not
declare (an unknown workload, a port the workload does not serve, a too-broad network) is refused and
reported, never applied. Active means created at or before now and ending after now.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from payguard.kinds import EXCEPTIONS_ANNOTATION, WORKLOAD_LABEL
from payguard.model import InvalidSpec, PaymentService
from payguard.platform import Network
from payguard.spec import parse_go_duration, parse_payment_service
from payguard.spec.networks import check_cluster_networks

ACTIVE = "Active"
REFUSED = "Refused"
# Kinds whose rendered spec an allowance changes: a caller opens authorization and ingress, egress
# opens the NetworkPolicy only.
_CHANGED_KINDS = {"caller": ("AuthorizationPolicy", "NetworkPolicy"), "egress": ("NetworkPolicy",)}
_MERGED_RULE = re.compile(
    r"^spec\.workloads\[\d+\]\.(callers|egress)\[\d+\]\.?(?P<rest>[^:]*)(?P<message>:.*)?$", re.DOTALL
)


@dataclass(frozen=True)
class ServiceException:
    """One PaymentServiceException as read from the API (the CRD has checked its shape)."""

    name: str
    workload: str
    kind: str  # "caller" or "egress"
    allowance: Mapping[str, Any]
    reason: str
    ticket: str
    requested_by: str
    starts: datetime
    ends: datetime

    def active(self, now: datetime) -> bool:
        return self.starts <= now < self.ends

    def describe(self) -> str:
        """What it allows, in one line for status and Events."""
        allowance = self.allowance
        ports = ",".join(str(p) for p in allowance.get("ports") or [])
        if self.kind == "egress":
            return f"egress to {allowance.get('cidr')} ports {ports}"
        principal = allowance.get("principal") or {}
        who = (
            f"workload {allowance['workload']}"
            if allowance.get("workload")
            else f"principal {principal.get('namespace')}/{principal.get('serviceAccount')}"
        )
        text = f"caller {who} ports {ports}"
        if allowance.get("methods"):
            text += f" methods {','.join(allowance['methods'])}"
        if allowance.get("paths"):
            text += f" paths {','.join(allowance['paths'])}"
        return text


@dataclass
class Merge:
    """The PaymentService with every applicable exception in it, and what to report about them."""

    service: PaymentService
    active: list[ServiceException] = field(default_factory=list)
    refused: list[tuple[ServiceException, str]] = field(default_factory=list)
    next_end: datetime | None = None

    def by_workload(self) -> dict[str, list[ServiceException]]:
        found: dict[str, list[ServiceException]] = {}
        for item in self.active:
            found.setdefault(item.workload, []).append(item)
        return found


def read_exception(body: Mapping[str, Any]) -> ServiceException | None:
    """None for a body payguard cannot read (the CRD makes that rare): it allows nothing."""
    try:
        spec = body["spec"]
        allow = spec["allow"]
        kind = "caller" if "caller" in allow else "egress"
        starts = datetime.fromisoformat(body["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        return ServiceException(
            name=body["metadata"]["name"],
            workload=spec["workload"],
            kind=kind,
            allowance=allow[kind],
            reason=spec["reason"],
            ticket=spec["ticket"],
            requested_by=spec["requestedBy"],
            starts=starts,
            ends=starts + parse_go_duration(spec["duration"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def merge_exceptions(
    body: Mapping[str, Any],
    service: PaymentService,
    exceptions: Sequence[ServiceException],
    *,
    now: datetime,
    networks: Sequence[tuple[str, Network]] = (),
) -> Merge:
    """Adds each active exception, oldest first, to the body; keeps only those the spec rules accept
    (an egress CIDR overlapping the cluster `networks` is refused, as in the spec)."""
    merged_body: Mapping[str, Any] = body  # never changed in place: each allowance copies it
    merge = Merge(service=service)
    for item in sorted(exceptions, key=lambda e: (e.starts, e.name)):
        if not item.active(now):
            continue
        candidate = _with_allowance(merged_body, item)
        try:
            if candidate is None:
                raise InvalidSpec("spec.workload", f"PaymentService has no workload named {item.workload!r}")
            widened = parse_payment_service(candidate)
            check_cluster_networks(widened, networks)
        except InvalidSpec as error:
            merge.refused.append((item, _exception_path(str(error), item)))
            continue
        merged_body, merge.service = candidate, widened
        merge.active.append(item)
        merge.next_end = item.ends if merge.next_end is None else min(merge.next_end, item.ends)
    return merge


def annotate(manifests: Sequence[dict[str, Any]], merge: Merge) -> list[dict[str, Any]]:
    """Names the active exceptions on each control they widen, so the object itself tells an auditor."""
    by_workload = merge.by_workload()
    annotated = []
    for manifest in manifests:
        metadata = manifest["metadata"]
        names = [
            e.name
            for e in by_workload.get(metadata["labels"][WORKLOAD_LABEL], [])
            if manifest["kind"] in _CHANGED_KINDS[e.kind]
        ]
        if not names:
            annotated.append(manifest)  # unchanged: copying every control on every pass cost a quarter of it
            continue
        annotations = {**(metadata.get("annotations") or {}), EXCEPTIONS_ANNOTATION: ",".join(names)}
        annotated.append({**manifest, "metadata": {**metadata, "annotations": annotations}})
    return annotated


STATUS_LIMIT = 64  # the CRD's maxItems for status.exceptions: one entry more and the whole status is refused


def status_entries(merge: Merge) -> list[dict[str, Any]]:
    """status.exceptions: who asked, what it allows, why, and until when; refused ones say why not. Beyond
    the CRD's limit the active ones (what is open right now) win over the refused ones."""
    active = sorted((_entry(item, ACTIVE, "") for item in merge.active), key=lambda entry: entry["name"])
    refused = sorted(
        (_entry(item, REFUSED, message) for item, message in merge.refused), key=lambda entry: entry["name"]
    )
    return sorted((active + refused)[:STATUS_LIMIT], key=lambda entry: entry["name"])


@dataclass(frozen=True)
class ExceptionNote:
    warning: bool
    reason: str
    note: str


def exception_notes(
    previous: Sequence[Mapping[str, Any]], merge: Merge, *, existing: set[str], now: datetime
) -> list[ExceptionNote]:
    """Events for what changed since the last status: an exception started, ended, or was refused."""
    before = {entry.get("name"): entry.get("state") for entry in previous}
    notes = []
    for item in merge.active:
        if before.get(item.name) != ACTIVE:
            notes.append(
                ExceptionNote(
                    True,
                    "ExceptionActivated",
                    f"Exception {item.name} allows {item.describe()} to workload {item.workload} until "
                    f"{_timestamp(item.ends)} (ticket {item.ticket}, requested by {item.requested_by}): "
                    f"{item.reason}",
                )
            )
    for item, message in merge.refused:
        if before.get(item.name) != REFUSED:
            notes.append(
                ExceptionNote(True, "ExceptionRefused", f"Exception {item.name} not applied: {message}")
            )
    active_now = {item.name for item in merge.active}
    ends = {entry.get("name"): entry.get("expiresAt") for entry in previous}
    for name, state in sorted(before.items(), key=lambda pair: str(pair[0])):
        if state == ACTIVE and name not in active_now:
            # Its end as recorded, and when the allowance went: later if payguard was down at the end.
            how = f"expired at {ends.get(name)}" if name in existing else "was deleted"
            notes.append(
                ExceptionNote(
                    False,
                    "ExceptionExpired",
                    f"Exception {name} {how}; its allowance is removed at {_timestamp(now)}",
                )
            )
    return notes


def _with_allowance(body: Mapping[str, Any], item: ServiceException) -> dict[str, Any] | None:
    candidate = copy.deepcopy(dict(body))
    for workload in candidate.get("spec", {}).get("workloads") or []:
        if workload.get("name") == item.workload:
            key = "callers" if item.kind == "caller" else "egress"
            workload[key] = [*(workload.get(key) or []), copy.deepcopy(dict(item.allowance))]
            return candidate
    return None


def _exception_path(message: str, item: ServiceException) -> str:
    """The parser names the field of the merged PaymentService; say which field of the exception it is."""
    found = _MERGED_RULE.match(message)
    if found is None:
        return message
    rest = f".{found['rest']}" if found["rest"] else ""
    return f"spec.allow.{item.kind}{rest}{found['message'] or ''}"


def _entry(item: ServiceException, state: str, message: str) -> dict[str, Any]:
    entry = {
        "name": item.name,
        "workload": item.workload,
        "allows": item.describe(),
        "reason": item.reason,
        "ticket": item.ticket,
        "requestedBy": item.requested_by,
        "expiresAt": _timestamp(item.ends),
        "state": state,
    }
    if message:
        entry["message"] = message
    return entry


def _timestamp(moment: datetime) -> str:
    return (moment - timedelta(microseconds=moment.microsecond)).strftime("%Y-%m-%dT%H:%M:%SZ")
