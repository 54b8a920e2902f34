"""Owns the reconcile pass: one level-based, idempotent pass that makes a PaymentService's children what
they should be and reports what holds.

Every trigger (create, update, restart, a child changed or deleted, periodic resync) runs this same pass,
in four steps: observe (one snapshot from the watch-fed cache), converge (render, then apply and prune
only what differs), judge (pure: posture, certificates, conditions) and write (status once, only when it
changed; Events for what was done). A second pass with nothing changed sends no write at all.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from payguard import metrics
from payguard.api import ApiError, ClusterApi
from payguard.breakglass import annotate, exception_notes, merge_exceptions, read_exception, status_entries
from payguard.cache import ObjectCache
from payguard.conditions import Condition, invalid_spec_condition
from payguard.converge import converge
from payguard.fights import DriftHistory, Fight
from payguard.judge import (
    EventNote,
    condition_notes,
    event_notes,
    judge,
    previous_conditions,
    requests_unobserved,
    status_patch,
)
from payguard.kinds import PAYMENT_SERVICES
from payguard.model import Enforcement, InvalidSpec, PaymentService
from payguard.observe import observe, observe_exceptions, parsed_service
from payguard.outcome import ChildResult, Outcome
from payguard.render import render_children, with_rendered_hash
from payguard.retention import add_finalizer
from payguard.settings import Platform, RunSettings
from payguard.snapshot import ChildKey, Snapshot
from payguard.spec.networks import check_cluster_networks

logger = logging.getLogger(__name__)


def log_fields(**fields: str) -> dict[str, Any]:
    """`extra` for a log line about an object: JSON logs carry these as fields of their own."""
    return {"fields": {"kind": PAYMENT_SERVICES.kind, **fields}}


@dataclass
class PassReport:
    """What a pass did, for logs, metrics and tests."""

    children: list[ChildResult] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    status_written: bool = False
    finalizer_added: bool = False
    invalid: str = ""
    # When a certificate's posture next changes by the clock alone, so the caller can wake up then.
    next_certificate_change: datetime | None = None
    # When the next break-glass exception ends, so its allowance is removed right then.
    next_exception_end: datetime | None = None

    @property
    def writes(self) -> int:
        changed = (Outcome.CREATED, Outcome.UPDATED, Outcome.REVERTED, Outcome.ADOPTED)
        return (
            sum(1 for c in self.children if c.outcome in changed)
            + len(self.pruned)
            + int(self.status_written)
            + int(self.finalizer_added)
        )


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PassContext:
    """Everything a pass needs besides the PaymentService; no field has a default, so none is forgotten."""

    cluster: ClusterApi
    cache: ObjectCache
    platform: Platform
    mesh_root_namespace: str
    mesh_config_name: str
    audit_only: bool
    drift_history: DriftHistory
    clock: Callable[[], datetime]

    @classmethod
    def from_settings(
        cls,
        settings: RunSettings,
        *,
        cluster: ClusterApi,
        cache: ObjectCache,
        clock: Callable[[], datetime] = system_clock,
    ) -> PassContext:
        return cls(
            cluster=cluster,
            cache=cache,
            platform=settings.platform,
            mesh_root_namespace=settings.mesh_root_namespace,
            mesh_config_name=settings.mesh_config_name,
            audit_only=settings.audit_only,
            drift_history=DriftHistory(window=timedelta(seconds=settings.fight_window_seconds)),
            clock=clock,
        )


def reconcile(body: Mapping[str, Any], context: PassContext) -> PassReport:
    """One pass for one PaymentService body (the latest the watch delivered)."""
    started = time.perf_counter()
    try:
        report = _reconcile(body, context)
    except Exception:
        metrics.RECONCILES.labels(result="error").inc()
        raise
    finally:
        metrics.RECONCILE_DURATION.observe(time.perf_counter() - started)
    metrics.RECONCILES.labels(result="invalid" if report.invalid else "ok").inc()
    return report


def _reconcile(body: Mapping[str, Any], context: PassContext) -> PassReport:
    report = PassReport()
    body = _hold_deletion(body, context, report)
    try:
        service = parsed_service(body, context.cache)
        check_cluster_networks(service, context.platform.cluster_networks())
    except InvalidSpec as error:
        # Keep the last good controls: nothing is applied or pruned until the spec is valid again.
        report.invalid = str(error)
        _write_status(body, [invalid_spec_condition(str(error))], context, report, summaries={})
        return report
    now = context.clock()

    # 1. observe
    exception_bodies = observe_exceptions(service, context.cache)
    exceptions = [e for e in map(read_exception, exception_bodies) if e is not None]
    merge = merge_exceptions(body, service, exceptions, now=now, networks=context.platform.cluster_networks())
    service = merge.service  # with every active break-glass allowance in it
    if context.audit_only:
        service = dataclasses.replace(service, enforcement=Enforcement.AUDIT)
    snapshot = observe(
        service,
        context.cache,
        mesh_root_namespace=context.mesh_root_namespace,
        mesh_config_name=context.mesh_config_name,
    )
    # 2. converge
    # Hashed again with the exceptions named: their start or end is the owner's change, never drift.
    desired = tuple(
        map(
            with_rendered_hash,
            annotate(
                render_children(service, platform=context.platform, dataplanes=snapshot.dataplanes), merge
            ),
        )
    )
    done = converge(service, body, desired, snapshot, context.cluster)
    _keep_own_updates(context.cache, snapshot, done.written)
    report.children, report.pruned = done.children, done.pruned
    report.next_exception_end = merge.next_end
    # 3. judge
    fights = _fights(service, done.children, snapshot, context.drift_history, now=now)
    verdict = judge(
        service,
        body,
        _confirm_certificate_requests(
            service, snapshot.after(written=done.written, removed=done.removed), context.cluster
        ),
        done.children,
        mesh_root_namespace=context.mesh_root_namespace,
        mesh_config_name=context.mesh_config_name,
        fights=fights,
        now=now,
    )
    # Woken again when a certificate's posture or a fight ends by the clock alone.
    moments = [verdict.next_certificate_change, *(fight.ends for fight in fights)]
    report.next_certificate_change = min((m for m in moments if m is not None), default=None)
    # 4. write
    told = event_notes(done.children, done.pruned, fighting={fight.key for fight in fights})
    for note in told:
        _tell(body, note, context)
    previous = (body.get("status") or {}).get("exceptions") or []
    existing = {b["metadata"]["name"] for b in exception_bodies}
    for item in exception_notes(previous, merge, existing=existing, now=now):
        _tell(body, EventNote(item.warning, item.reason, "BreakGlass", item.note), context)
        if not item.warning:  # a break-glass change is logged either way (PCI DSS Req. 10)
            logger.info(
                "%s: %s",
                item.reason,
                item.note,
                extra=log_fields(namespace=service.namespace, name=service.name),
            )
    metrics.record_exceptions(namespace=service.namespace, service=service.name, active=len(merge.active))
    metrics.record_certificates(
        namespace=service.namespace, service=service.name, postures=verdict.certificates
    )
    metrics.record_conditions(
        namespace=service.namespace,
        service=service.name,
        conditions=[(c.type, c.status is True) for c in verdict.conditions],
    )
    summaries = {**verdict.summaries, "exceptions": status_entries(merge)}
    _write_status(
        body, verdict.conditions, context, report, summaries=summaries, told=[n.reason for n in told]
    )
    return report


def _confirm_certificate_requests(
    service: PaymentService, snapshot: Snapshot, cluster: ClusterApi
) -> Snapshot:
    """A Certificate whose current revision's request the cache has not seen signed: each kind has its own
    watch, and the CertificateRequests' may lag the Certificates'. One read of the namespace's requests
    tells a request that exists from one that is missing or unreadable (read only then)."""
    if not requests_unobserved(service, snapshot):
        return snapshot
    try:
        live = cluster.read_certificate_requests(namespace=service.namespace)
    except ApiError as error:
        logger.debug("Cannot read the CertificateRequests of %s: %s", service.namespace, error)
        return snapshot
    return dataclasses.replace(snapshot, certificate_requests=tuple(live))


def _keep_own_updates(cache: ObjectCache, snapshot: Snapshot, written: Mapping[ChildKey, Any]) -> None:
    """Children this pass updated go into the cache at once (unless the watch brought a newer copy): each
    kind has its own watch, and the next pass may start before this one delivers them, then apply them
    again. Not a create: a DELETED event already delivered would be undone (converge reads a missing
    child instead)."""
    for (kind, namespace, name), applied in written.items():
        before = snapshot.namespace_objects.get((kind, namespace, name))
        if before is not None:
            cache.advance(kind, applied, from_version=str(before["metadata"].get("resourceVersion")))


def _fights(
    service: PaymentService,
    children: Sequence[ChildResult],
    snapshot: Snapshot,
    history: DriftHistory,
    *,
    now: datetime,
) -> list[Fight]:
    """Records this pass's drifts; the children another writer keeps drifting."""
    for child in children:
        if child.drift and child.outcome in (Outcome.REVERTED, Outcome.DRIFTED):
            live = snapshot.namespace_objects.get(child.key) or {}
            version = str((live.get("metadata") or {}).get("resourceVersion", ""))
            history.record(child.key, version=version, by=child.drift.by, now=now)
    fights = history.fights([child.key for child in children], now=now)
    drifted_now = {child.key for child in children if child.drift}
    for fight in fights:
        if fight.key in drifted_now:
            metrics.DRIFT_REPEATED.labels(kind=fight.key[0]).inc()
    return fights


def _hold_deletion(body: Mapping[str, Any], context: PassContext, report: PassReport) -> Mapping[str, Any]:
    """payguard's finalizer goes on before any control: a deletion then waits until the deletionPolicy
    has been carried out, instead of garbage collection opening every workload."""
    operations = add_finalizer(body)
    if not operations:
        return body
    metadata = body["metadata"]
    live = context.cluster.json_patch(
        kind=PAYMENT_SERVICES.kind,
        namespace=metadata["namespace"],
        name=metadata["name"],
        resource_version=metadata["resourceVersion"],
        operations=operations,
    )
    metrics.WRITES.labels(verb="patch", kind=PAYMENT_SERVICES.kind).inc()
    report.finalizer_added = True
    context.cache.advance(PAYMENT_SERVICES.kind, live, from_version=str(metadata["resourceVersion"]))
    return live


def _write_status(
    body: Mapping[str, Any],
    conditions: tuple[Condition, ...] | list[Condition],
    context: PassContext,
    report: PassReport,
    *,
    summaries: Mapping[str, Any],
    told: Sequence[str] = (),
) -> None:
    """Patches status once, and only when something in it changed; then tells of every condition that
    became a problem (Warning Event and WARNING log line) or holds again (Normal Event)."""
    status = status_patch(body, conditions, summaries=summaries, now=context.clock())
    if status is None:
        return
    metadata = body["metadata"]
    live = context.cluster.patch_status(namespace=metadata["namespace"], name=metadata["name"], status=status)
    metrics.WRITES.labels(verb="patch", kind="PaymentService/status").inc()
    report.status_written = True
    # The next pass must see this status: Events about problems and exceptions are judged against it.
    context.cache.advance(PAYMENT_SERVICES.kind, live, from_version=str(metadata.get("resourceVersion")))
    for note in condition_notes(previous_conditions(body), conditions, told=told):
        _tell(body, note, context)


def _tell(body: Mapping[str, Any], note: EventNote, context: PassContext) -> None:
    """An Event; a Warning is also one WARNING log line, for pipelines that alert on logs."""
    metadata = body["metadata"]
    if note.warning:
        logger.warning(
            "PaymentService %s/%s: %s",
            metadata["namespace"],
            metadata["name"],
            note.note,
            extra=log_fields(namespace=metadata["namespace"], name=metadata["name"], reason=note.reason),
        )
    context.cluster.post_event(
        regarding=body, warning=note.warning, reason=note.reason, action=note.action, note=note.note
    )
