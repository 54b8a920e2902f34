"""Owns the reconcile pass: one level-based, idempotent pass that makes a PaymentService's children what
they should be and reports what holds.

Every trigger (create, update, restart, a child changed or deleted, periodic resync) runs this same pass.
It reads live objects from the watch-fed cache, writes only what differs, and patches status only when
it changed, so a second pass with nothing changed sends no write at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from payguard import metrics
from payguard.cache import ObjectCache
from payguard.certificates import (
    CertificatePosture,
    assess_certificate,
    issuer_key,
    latest_request,
    next_change,
)
from payguard.cluster import ApiError, Cluster
from payguard.conditions import Condition, build_conditions, invalid_spec_condition, merge_conditions
from payguard.drift import Drift, detect_drift
from payguard.kinds import (
    CHILD_TYPES,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PAYMENT_SERVICES,
    SERVICE_LABEL,
    WORKLOAD_LABEL,
)
from payguard.model import DriftPolicy, Enforcement, InvalidSpec, PaymentService
from payguard.outcome import NO_DRIFT, ChildResult, Outcome
from payguard.posture import MTLSPosture, effective_mtls, is_owned_by, least_privilege_findings
from payguard.render import Manifest, Platform, child_key, render_children
from payguard.render.certificates import certificate_secret_name
from payguard.spec import parse_payment_service

logger = logging.getLogger(__name__)


@dataclass
class PassReport:
    """What a pass did, for logs, metrics and tests."""

    children: list[ChildResult] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    status_written: bool = False
    invalid: str = ""
    # When a certificate's posture next changes by the clock alone, so the caller can wake up then.
    next_certificate_change: datetime | None = None

    @property
    def writes(self) -> int:
        changed = (Outcome.CREATED, Outcome.REVERTED)
        return (
            sum(1 for c in self.children if c.outcome in changed)
            + len(self.pruned)
            + int(self.status_written)
        )


@dataclass(frozen=True)
class PassContext:
    cluster: Cluster
    cache: ObjectCache
    platform: Platform = field(default_factory=Platform)
    mesh_root_namespace: str = "istio-system"
    audit_only: bool = False
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


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
    try:
        service = parse_payment_service(body)
    except InvalidSpec as error:
        # Keep the last good controls: nothing is applied or pruned until the spec is valid again.
        report.invalid = str(error)
        _write_status(body, [invalid_spec_condition(str(error))], context, report, extra={})
        return report
    if context.audit_only:
        service = dataclasses.replace(service, enforcement=Enforcement.AUDIT)

    desired = render_children(service, platform=context.platform)
    live = _live_children(service, context.cache)
    for manifest in desired:
        result, applied = _converge(service, body, manifest, live.get(child_key(manifest)), context)
        report.children.append(result)
        if applied is not None:
            live[child_key(manifest)] = applied
    _prune(service, desired, live, context, report)
    _announce(body, report, context)

    def observed(kind: str, *, mesh_wide: bool) -> list[dict[str, Any]]:
        namespaces = [context.mesh_root_namespace] if mesh_wide else []
        return _with_pass_writes(context.cache, live, kind, service=service, other_namespaces=namespaces)

    mtls = effective_mtls(
        service,
        observed("PeerAuthentication", mesh_wide=True),
        mesh_root_namespace=context.mesh_root_namespace,
    )
    widening = least_privilege_findings(
        service,
        network_policies=observed("NetworkPolicy", mesh_wide=False),
        authorization_policies=observed("AuthorizationPolicy", mesh_wide=True),
        other_services=_other_services(service, context.cache),
        mesh_root_namespace=context.mesh_root_namespace,
    )
    certificates = _certificate_postures(service, live, context)
    now = context.clock()
    changes = [next_change(c, service.certificates, now=now) for c in certificates]
    report.next_certificate_change = min((c for c in changes if c is not None), default=None)
    metrics.record_certificates(namespace=service.namespace, service=service.name, postures=certificates)
    previous = _previous_conditions(body)
    conditions = build_conditions(service, report.children, mtls, widening, certificates, previous=previous)
    metrics.record_conditions(
        namespace=service.namespace, service=service.name, conditions=[(c.type, c.status) for c in conditions]
    )
    _write_status(body, conditions, context, report, extra=_summaries(service, report, mtls, certificates))
    return report


def _certificate_postures(
    service: PaymentService, live: Mapping[tuple[str, str, str], dict[str, Any]], context: PassContext
) -> list[CertificatePosture]:
    """Each workload's certificate, judged from public API data only (never a Secret)."""
    issuer_kind, issuer_namespace, issuer_name = issuer_key(service.certificates, namespace=service.namespace)
    issuer = context.cache.get(issuer_kind, namespace=issuer_namespace, name=issuer_name)
    requests = context.cache.list("CertificateRequest", namespaces=[service.namespace])
    now = context.clock()
    postures = []
    for workload in service.workloads:
        name = service.child_name(workload)
        postures.append(
            assess_certificate(
                workload=workload.name,
                name=name,
                secret_name=certificate_secret_name(service, workload),
                policy=service.certificates,
                expected_uri=service.principal_of(workload).spiffe_id(service.trust_domain),
                certificate=live.get(("Certificate", service.namespace, name)),
                request=latest_request(requests, certificate_name=name),
                issuer=issuer,
                now=now,
            )
        )
    return postures


# --- children ----------------------------------------------------------------------------------------


def _live_children(service: PaymentService, cache: ObjectCache) -> dict[tuple[str, str, str], dict[str, Any]]:
    found = {}
    for kind in CHILD_TYPES:
        for obj in cache.list(kind, namespaces=[service.namespace]):
            found[(kind, service.namespace, obj["metadata"]["name"])] = obj
    return found


def _converge(  # noqa: PLR0911 - one return per outcome reads clearest
    service: PaymentService,
    body: Mapping[str, Any],
    manifest: Manifest,
    live: Mapping[str, Any] | None,
    context: PassContext,
) -> tuple[ChildResult, dict[str, Any] | None]:
    kind, namespace, name = child_key(manifest)
    workload = manifest["metadata"]["labels"][WORKLOAD_LABEL]

    def result(outcome: str, drift: Drift = NO_DRIFT, error: str = "") -> ChildResult:
        return ChildResult(kind, namespace, name, workload, outcome, drift, error)

    if live is not None and not is_owned_by(live, service_uid=service.uid):
        return result(Outcome.CONFLICT), None
    if live is None and service.drift_policy is DriftPolicy.REPORT and _generation_reconciled(service, body):
        # The spec has not changed since a pass applied it, so a missing child was deleted by hand.
        metrics.DRIFT_DETECTED.labels(kind=kind).inc()
        return result(Outcome.DRIFTED, Drift(changed=("(deleted)",))), None
    drift = NO_DRIFT if live is None else detect_drift(manifest, live)
    if live is not None and not drift:
        return result(Outcome.UNCHANGED), None
    if live is not None:
        metrics.DRIFT_DETECTED.labels(kind=kind).inc()
        if service.drift_policy is DriftPolicy.REPORT:
            return result(Outcome.DRIFTED, drift), None
    try:
        if live is not None and drift.foreign:
            context.cluster.remove_fields(
                kind=kind,
                namespace=namespace,
                name=name,
                resource_version=live["metadata"]["resourceVersion"],
                fields=drift.foreign,
            )
            metrics.WRITES.labels(verb="patch", kind=kind).inc()
        applied = context.cluster.apply(manifest)
        metrics.WRITES.labels(verb="apply", kind=kind).inc()
    except ApiError as error:
        return result(Outcome.FAILED, drift, str(error)), None
    if live is None:
        logger.info("Applied %s %s/%s", kind, namespace, name)
        return result(Outcome.CREATED), applied
    metrics.DRIFT_REVERTED.labels(kind=kind).inc()
    logger.info("Reverted drift in %s %s/%s: %s", kind, namespace, name, ", ".join(drift.paths))
    return result(Outcome.REVERTED, drift), applied


def _generation_reconciled(service: PaymentService, body: Mapping[str, Any]) -> bool:
    return bool((body.get("status") or {}).get("observedGeneration") == service.generation)


def _prune(
    service: PaymentService,
    desired: Sequence[Manifest],
    live: dict[tuple[str, str, str], dict[str, Any]],
    context: PassContext,
    report: PassReport,
) -> None:
    """Deletes children this service owns but no longer wants (a removed workload, or Audit mode)."""
    wanted = {child_key(m) for m in desired}
    for key, obj in sorted(live.items()):
        labels = obj["metadata"].get("labels") or {}
        ours = labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and labels.get(SERVICE_LABEL) == service.name
        if key in wanted or not ours or not is_owned_by(obj, service_uid=service.uid):
            continue
        kind, namespace, name = key
        try:
            context.cluster.delete(kind=kind, namespace=namespace, name=name, uid=obj["metadata"]["uid"])
        except ApiError as error:
            logger.warning("Failed to prune %s %s/%s: %s", kind, namespace, name, error)
            continue
        metrics.WRITES.labels(verb="delete", kind=kind).inc()
        logger.info("Pruned %s %s/%s", kind, namespace, name)
        report.pruned.append(f"{kind}/{name}")
        del live[key]


def _with_pass_writes(
    cache: ObjectCache,
    live: Mapping[tuple[str, str, str], dict[str, Any]],
    kind: str,
    *,
    service: PaymentService,
    other_namespaces: Sequence[str],
) -> list[dict[str, Any]]:
    """Objects of a kind as they are after this pass: the watch may not have delivered its writes yet.

    `live` started as the cache's view of the service's namespace and was updated with every apply and
    prune of the pass, so it is the truth there; other namespaces come from the cache.
    """
    elsewhere = [
        obj for obj in cache.list(kind, namespaces=[ns for ns in other_namespaces if ns != service.namespace])
    ]
    return elsewhere + [obj for (k, _, _), obj in live.items() if k == kind]


def _other_services(service: PaymentService, cache: ObjectCache) -> list[PaymentService]:
    others = []
    for body in cache.list(PAYMENT_SERVICES.kind, namespaces=[service.namespace]):
        if body["metadata"].get("uid") != service.uid:
            parsed = _parse_cached(body)
            if parsed is not None:
                others.append(parsed)
    return others


# Parsed neighbours by (uid, resourceVersion): every pass reads all services of its namespace, and
# parsing each one every time would make a pass cost grow with the namespace.
_PARSED: dict[tuple[str, str], PaymentService | None] = {}
_PARSED_LIMIT = 4096


def _parse_cached(body: Mapping[str, Any]) -> PaymentService | None:
    key = (str(body["metadata"].get("uid")), str(body["metadata"].get("resourceVersion")))
    with contextlib.suppress(KeyError):  # another thread may clear it between a check and a read
        return _PARSED[key]
    try:
        parsed: PaymentService | None = parse_payment_service(body)
    except InvalidSpec:
        parsed = None
    if len(_PARSED) >= _PARSED_LIMIT:  # worker threads share it; a lost entry is only parsed again
        _PARSED.clear()
    _PARSED[key] = parsed
    return parsed


# --- events ------------------------------------------------------------------------------------------


def _announce(body: Mapping[str, Any], report: PassReport, context: PassContext) -> None:
    """One Event per kind of thing a pass did or was refused, naming every object; quiet passes post none.

    One per kind rather than one per object: a new PaymentService would otherwise double its writes.
    """
    created = [c.ref for c in report.children if c.outcome == Outcome.CREATED]
    reverted = [
        f"{c.ref}: {', '.join(c.drift.paths)}" for c in report.children if c.outcome == Outcome.REVERTED
    ]
    failed = [c.error for c in report.children if c.outcome == Outcome.FAILED]
    for items, warning, reason, action, verb in (
        (created, False, "Created", "Apply", "Created"),
        (reverted, True, "DriftReverted", "Repair", "Reverted drift in"),
        (failed, True, "ApplyFailed", "Apply", "Failed:"),
        (report.pruned, False, "Pruned", "Delete", "Deleted"),
    ):
        if items:
            note = f"{verb} {'; '.join(items)}"
            context.cluster.post_event(
                regarding=body, warning=warning, reason=reason, action=action, note=note
            )


# --- status ------------------------------------------------------------------------------------------


_CHILD_STATE = {Outcome.CREATED: "Applied", Outcome.UNCHANGED: "Applied", Outcome.REVERTED: "Applied"}


def _summaries(
    service: PaymentService,
    report: PassReport,
    mtls: Sequence[MTLSPosture],
    certificates: Sequence[CertificatePosture],
) -> dict[str, Any]:
    by_workload: dict[str, dict[str, Any]] = {w.name: {"name": w.name} for w in service.workloads}
    for certificate in certificates:
        by_workload[certificate.workload]["certificate"] = certificate.summary()
    for posture in mtls:
        by_workload[posture.workload]["mtls"] = posture.mode
    for child in report.children:
        field_name = {"AuthorizationPolicy": "authorization", "NetworkPolicy": "network"}.get(child.kind)
        if field_name:
            # A state, not what this pass did, so a quiet pass leaves the status untouched.
            by_workload[child.workload][field_name] = _CHILD_STATE.get(child.outcome, child.outcome)
    return {"workloadCount": len(service.workloads), "workloads": list(by_workload.values())}


def _previous_conditions(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c.get("type", ""): c for c in (body.get("status") or {}).get("conditions") or []}


def _write_status(
    body: Mapping[str, Any],
    conditions: Sequence[Condition],
    context: PassContext,
    report: PassReport,
    *,
    extra: Mapping[str, Any],
) -> None:
    """Patches status once, and only when something in it changed."""
    current = body.get("status") or {}
    generation = int(body["metadata"].get("generation", 0))
    status: dict[str, Any] = {
        **extra,
        "observedGeneration": generation,
        "conditions": merge_conditions(
            current.get("conditions") or [], conditions, generation=generation, now=context.clock()
        ),
    }
    if all(current.get(key) == value for key, value in status.items()):
        return
    metadata = body["metadata"]
    context.cluster.patch_status(namespace=metadata["namespace"], name=metadata["name"], status=status)
    metrics.WRITES.labels(verb="patch", kind="PaymentService/status").inc()
    report.status_written = True
