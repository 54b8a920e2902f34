"""Owns what happens when a PaymentService is deleted: its deletionPolicy is carried out, announced, and
only then is payguard's finalizer removed, so no deletion ever opens a workload by surprise.

Retain (the default) detaches every control from the PaymentService and marks it retained, so garbage
collection leaves it in place; Delete removes the controls. Either way an Event and a log line say so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from payguard import metrics
from payguard.api import ApiError, ClusterApi
from payguard.cache import ObjectCache
from payguard.kinds import CHILD_TYPES, PAYMENT_SERVICES
from payguard.model import DeletionPolicy
from payguard.posture.objects import is_owned_by
from payguard.retention import deletion_policy, detach, has_finalizer, remove_finalizer

logger = logging.getLogger(__name__)


class ControlsUnobservable(Exception):  # noqa: N818 - reads as the state it reports
    """The finalizer stays: payguard cannot see every kind of control, so it cannot retain them all."""


@dataclass
class Finalization:
    """What carrying out the deletion policy did."""

    policy: DeletionPolicy
    controls: list[str] = field(default_factory=list)  # Kind/name
    finalizer_removed: bool = False


def finalize(
    body: Mapping[str, Any],
    *,
    cache: ObjectCache,
    cluster: ClusterApi,
    now: datetime,
    namespace_terminating: bool,
) -> Finalization:
    """Carries out the deletionPolicy of a PaymentService that is being deleted, then releases it.

    In a namespace being deleted, the namespace takes every control with it: the finalizer is removed at
    once (and no Event can be posted there).
    """
    metadata = body["metadata"]
    namespace, name, uid = metadata["namespace"], metadata["name"], metadata.get("uid", "")
    done = Finalization(policy=deletion_policy(body))
    if not has_finalizer(body):
        return done
    if not namespace_terminating:
        unobserved = sorted(set(cache.unavailable()) & set(CHILD_TYPES))
        if unobserved and done.policy is DeletionPolicy.RETAIN:
            raise ControlsUnobservable(
                f"PaymentService {namespace}/{name} keeps its finalizer: "
                f"cannot observe {', '.join(unobserved)}"
            )
        children = [
            obj
            for kind in CHILD_TYPES
            for obj in cache.list(kind, namespaces=[namespace])
            if is_owned_by(obj, service_uid=uid)
        ]
        if done.policy is DeletionPolicy.RETAIN:
            service_ref = f"PaymentService {namespace}/{name} (uid {uid})"
            _retain(children, cluster, cache, service_uid=uid, service_ref=service_ref, now=now)
        else:
            _delete(children, cluster, cache)
        done.controls = sorted(f"{obj['kind']}/{obj['metadata']['name']}" for obj in children)
        _announce(body, done, cluster)
    released = cluster.json_patch(
        kind=PAYMENT_SERVICES.kind,
        namespace=namespace,
        name=name,
        resource_version=metadata["resourceVersion"],
        operations=remove_finalizer(body),
    )
    metrics.WRITES.labels(verb="patch", kind=PAYMENT_SERVICES.kind).inc()
    # A pass woken meanwhile (by the controls just detached) must not finalize again from a copy the
    # watch has not replaced yet: it would announce "no controls" and patch a released object.
    cache.advance(PAYMENT_SERVICES.kind, released, from_version=str(metadata["resourceVersion"]))
    done.finalizer_removed = True
    return done


def _retain(
    children: list[dict[str, Any]],
    cluster: ClusterApi,
    cache: ObjectCache,
    *,
    service_uid: str,
    service_ref: str,
    now: datetime,
) -> None:
    for obj in children:
        metadata = obj["metadata"]
        detached = cluster.json_patch(
            kind=obj["kind"],
            namespace=metadata["namespace"],
            name=metadata["name"],
            resource_version=metadata["resourceVersion"],
            operations=detach(obj, service_uid=service_uid, service_ref=service_ref, now=now),
        )
        metrics.WRITES.labels(verb="patch", kind=obj["kind"]).inc()
        cache.advance(obj["kind"], detached, from_version=str(metadata["resourceVersion"]))


def _delete(children: list[dict[str, Any]], cluster: ClusterApi, cache: ObjectCache) -> None:
    for obj in children:
        metadata = obj["metadata"]
        cluster.delete(
            kind=obj["kind"], namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"]
        )
        metrics.WRITES.labels(verb="delete", kind=obj["kind"]).inc()
        cache.remove(obj["kind"], namespace=metadata["namespace"], name=metadata["name"])


def _announce(body: Mapping[str, Any], done: Finalization, cluster: ClusterApi) -> None:
    metadata = body["metadata"]
    listed = ", ".join(done.controls) or "no controls"
    if done.policy is DeletionPolicy.RETAIN:
        reason, warning = "Retained", False
        note = (
            f"Kept {listed} in place after deletion (deletionPolicy Retain), labelled payguard.dev/retained; "
            f"a PaymentService named {metadata['name']} adopts them"
        )
    else:
        reason, warning = "Deleted", True
        note = f"Deleted {listed} with the PaymentService (deletionPolicy Delete)"
    logger.info("%s PaymentService %s/%s: %s", reason, metadata["namespace"], metadata["name"], note)
    try:
        cluster.post_event(regarding=body, warning=warning, reason=reason, action="Finalize", note=note)
    except ApiError as error:  # an Event is evidence, not a precondition of the deletion
        logger.warning("Failed to post Event %s: %s", reason, error)
