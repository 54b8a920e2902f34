"""Owns the second step of a pass: make the live children what was rendered (server-side apply, prune).

Only children this PaymentService owns are written or deleted; a foreign object holding a child's name is
reported as a conflict and left alone. Under `driftPolicy: Report` drift is recorded, not repaired.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from payguard import metrics
from payguard.api import ApiError, ClusterApi
from payguard.attribution import drift_authors
from payguard.drift import Drift, detect_drift
from payguard.kinds import MANAGED_BY_LABEL, MANAGED_BY_VALUE, SERVICE_LABEL, WORKLOAD_LABEL
from payguard.model import DriftPolicy, PaymentService
from payguard.outcome import NO_DRIFT, ChildResult, Outcome
from payguard.posture.objects import is_owned_by
from payguard.render import Manifest, child_key, owner_reference, rendered_hash
from payguard.retention import adopt, is_retained_for
from payguard.snapshot import ChildKey, Snapshot

logger = logging.getLogger(__name__)
DELETED = Drift(changed=("(deleted)",))


@dataclass
class Convergence:
    """What converging did: one result per desired child, and what was written or pruned."""

    children: list[ChildResult] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    written: dict[ChildKey, dict[str, Any]] = field(default_factory=dict)
    removed: list[ChildKey] = field(default_factory=list)


def converge(
    service: PaymentService,
    body: Mapping[str, Any],
    desired: Sequence[Manifest],
    snapshot: Snapshot,
    cluster: ClusterApi,
) -> Convergence:
    done = Convergence()
    live = snapshot.namespace_objects
    for manifest in desired:
        key = child_key(manifest)
        result, applied = _converge_child(
            service, body, manifest, live.get(key), cluster, unobserved=snapshot.unobserved
        )
        done.children.append(result)
        if applied is not None:
            done.written[key] = applied
    _prune(service, desired, live, cluster, done)
    return done


def _converge_child(  # noqa: PLR0911, PLR0912 - one return per outcome reads clearest
    service: PaymentService,
    body: Mapping[str, Any],
    manifest: Manifest,
    live: Mapping[str, Any] | None,
    cluster: ClusterApi,
    *,
    unobserved: Mapping[str, str],
) -> tuple[ChildResult, dict[str, Any] | None]:
    kind, namespace, name = child_key(manifest)
    workload = manifest["metadata"]["labels"][WORKLOAD_LABEL]

    def result(outcome: str, drift: Drift = NO_DRIFT, error: str = "") -> ChildResult:
        return ChildResult(kind, namespace, name, workload, outcome, drift, error)

    if kind in unobserved:
        # Blind to this kind (its CRD is not served): applying would fail, and drift cannot be told.
        return result(Outcome.UNOBSERVED, error=unobserved[kind]), None
    reconciled = _generation_reconciled(service, body)
    if live is None and reconciled:
        live = _confirm_missing(cluster, kind, namespace, name)
    adopted = False
    if live is not None and not is_owned_by(live, service_uid=service.uid):
        if not (service.uid and is_retained_for(live, service_name=service.name)):
            return result(Outcome.CONFLICT), None
        try:  # kept from a deleted PaymentService of this name: take it over where it stands
            live = _adopt(service, kind, live, cluster)
        except ApiError as error:
            return result(Outcome.FAILED, error=str(error)), None
        adopted = True
    found = NO_DRIFT if live is None else detect_drift(manifest, live)
    if live is None:
        # The spec has not changed since a pass applied it, so a missing child was deleted by hand.
        drift = DELETED if reconciled else NO_DRIFT
    elif not found:
        return (result(Outcome.ADOPTED), dict(live)) if adopted else (result(Outcome.UNCHANGED), None)
    else:
        # Rendered from an older spec: the owner's change, applied under both policies, never drift.
        drift = NO_DRIFT if rendered_hash(live) != rendered_hash(manifest) else found
    if drift:
        metrics.DRIFT_DETECTED.labels(kind=kind).inc()
        if live is not None:
            drift = replace(drift, by=_authors(cluster, kind, namespace, name, drift=drift, live=live))
        if service.drift_policy is DriftPolicy.REPORT:
            return result(Outcome.DRIFTED, drift), dict(live) if adopted and live is not None else None
    try:
        if live is not None and found.foreign:
            cluster.remove_fields(
                kind=kind,
                namespace=namespace,
                name=name,
                resource_version=live["metadata"]["resourceVersion"],
                fields=found.foreign,
            )
            metrics.WRITES.labels(verb="patch", kind=kind).inc()
        applied = cluster.apply(manifest)
        metrics.WRITES.labels(verb="apply", kind=kind).inc()
    except ApiError as error:
        return result(Outcome.FAILED, drift, str(error)), None
    if not drift:
        logger.info("%s %s %s/%s", "Applied" if live is None else "Updated", kind, namespace, name)
        return result(Outcome.CREATED if live is None else Outcome.UPDATED), applied
    metrics.DRIFT_REVERTED.labels(kind=kind).inc()
    logger.info("Reverted drift in %s %s/%s: %s", kind, namespace, name, drift.description)
    return result(Outcome.REVERTED, drift), applied


def _adopt(
    service: PaymentService, kind: str, live: Mapping[str, Any], cluster: ClusterApi
) -> dict[str, Any]:
    """Owns a retained control again, in one write guarded by the version that was read."""
    metadata = live["metadata"]
    adopted = cluster.json_patch(
        kind=kind,
        namespace=metadata["namespace"],
        name=metadata["name"],
        resource_version=metadata["resourceVersion"],
        operations=adopt(live, owner_reference=owner_reference(service)),
    )
    metrics.WRITES.labels(verb="patch", kind=kind).inc()
    logger.info("Adopted retained %s %s/%s", kind, metadata["namespace"], metadata["name"])
    return adopted


def _confirm_missing(cluster: ClusterApi, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """A child the cache lacks although a pass applied this spec: deleted by hand, or written by the last
    pass and not yet delivered by its watch (which would be a false DriftReverted). One read tells; if it
    fails, the child counts as missing, and re-applying it is safe (it only ever closes)."""
    try:
        return cluster.read_child(kind=kind, namespace=namespace, name=name)
    except ApiError as error:
        logger.debug("Cannot confirm %s %s/%s is missing: %s", kind, namespace, name, error)
        return None


def _authors(
    cluster: ClusterApi, kind: str, namespace: str, name: str, *, drift: Drift, live: Mapping[str, Any]
) -> tuple[str, ...]:
    """Who drifted it, from managedFields: the cache drops them, so one read, only on drift (none when
    `live` came from `_confirm_missing`'s read); unknown if it cannot be read."""
    fields = live["metadata"].get("managedFields")
    if fields is None:
        try:
            read = cluster.read_child(kind=kind, namespace=namespace, name=name)
        except ApiError as error:
            logger.debug("Cannot tell who drifted %s %s/%s: %s", kind, namespace, name, error)
            return ()
        fields = (read or {}).get("metadata", {}).get("managedFields")
    return drift_authors(fields or [], drift.paths)


def _generation_reconciled(service: PaymentService, body: Mapping[str, Any]) -> bool:
    return bool((body.get("status") or {}).get("observedGeneration") == service.generation)


def _prune(
    service: PaymentService,
    desired: Sequence[Manifest],
    live: Mapping[ChildKey, Mapping[str, Any]],
    cluster: ClusterApi,
    done: Convergence,
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
            cluster.delete(kind=kind, namespace=namespace, name=name, uid=obj["metadata"]["uid"])
        except ApiError as error:
            logger.warning("Failed to prune %s %s/%s: %s", kind, namespace, name, error)
            continue
        metrics.WRITES.labels(verb="delete", kind=kind).inc()
        logger.info("Pruned %s %s/%s", kind, namespace, name)
        done.pruned.append(f"{kind}/{name}")
        done.removed.append(key)
