"""Owns the metadata changes of the PaymentService lifecycle (pure): payguard's finalizer, detaching the
controls of a deleted PaymentService so they stay in place (deletionPolicy Retain), and adopting them again.

Each change is a list of JSON patch operations computed from the object as read; the caller sends them
guarded by that object's resourceVersion, so a concurrent change fails the patch instead of being lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from payguard.kinds import (
    FINALIZER,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RETAINED_AT_ANNOTATION,
    RETAINED_FROM_ANNOTATION,
    RETAINED_LABEL,
    SERVICE_LABEL,
)
from payguard.model import DeletionPolicy

Operations = list[dict[str, Any]]


def pointer(*keys: str | int) -> str:
    """A JSON pointer (RFC 6901): label keys such as payguard.dev/retained need their "/" escaped."""
    return "".join("/" + str(key).replace("~", "~0").replace("/", "~1") for key in keys)


def has_finalizer(body: Mapping[str, Any]) -> bool:
    return FINALIZER in (body.get("metadata", {}).get("finalizers") or [])


def add_finalizer(body: Mapping[str, Any]) -> Operations:
    if has_finalizer(body):
        return []
    finalizers = body.get("metadata", {}).get("finalizers")
    if finalizers:
        return [{"op": "add", "path": pointer("metadata", "finalizers", "-"), "value": FINALIZER}]
    return [{"op": "add", "path": pointer("metadata", "finalizers"), "value": [FINALIZER]}]


def remove_finalizer(body: Mapping[str, Any]) -> Operations:
    finalizers = body.get("metadata", {}).get("finalizers") or []
    return [
        {"op": "remove", "path": pointer("metadata", "finalizers", index)}
        for index in reversed(range(len(finalizers)))
        if finalizers[index] == FINALIZER
    ]


def deletion_policy(body: Mapping[str, Any]) -> DeletionPolicy:
    """Read from the raw body, so a spec payguard cannot parse still retains: an unreadable or unknown
    value means Retain (fail closed)."""
    value = (body.get("spec") or {}).get("deletionPolicy")
    return DeletionPolicy.DELETE if value == DeletionPolicy.DELETE.value else DeletionPolicy.RETAIN


def detach(obj: Mapping[str, Any], *, service_uid: str, service_ref: str, now: datetime) -> Operations:
    """Drops the ownerReference to the deleted PaymentService (so garbage collection leaves the object)
    and marks the object as retained: by whom it was generated and since when."""
    metadata = obj.get("metadata") or {}
    references = metadata.get("ownerReferences") or []
    operations: Operations = [
        {"op": "remove", "path": pointer("metadata", "ownerReferences", index)}
        for index in reversed(range(len(references)))
        if references[index].get("uid") == service_uid
    ]
    operations += _set_map(metadata, "labels", {RETAINED_LABEL: "true"})
    operations += _set_map(
        metadata,
        "annotations",
        {
            RETAINED_FROM_ANNOTATION: service_ref,
            RETAINED_AT_ANNOTATION: now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    return operations


def is_retained_for(obj: Mapping[str, Any], *, service_name: str) -> bool:
    """A control kept from a deleted PaymentService of this name (in the same namespace), owned by no one."""
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    return (
        labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
        and labels.get(SERVICE_LABEL) == service_name
        and labels.get(RETAINED_LABEL) == "true"
        and not any(ref.get("controller") for ref in metadata.get("ownerReferences") or [])
    )


def adopt(obj: Mapping[str, Any], *, owner_reference: Mapping[str, Any]) -> Operations:
    """Makes the new PaymentService the controller of a retained control and drops the retained marks, in
    one write: the control never leaves its place."""
    metadata = obj.get("metadata") or {}
    references = metadata.get("ownerReferences")
    operations: Operations = (
        [{"op": "add", "path": pointer("metadata", "ownerReferences", "-"), "value": dict(owner_reference)}]
        if references
        else [{"op": "add", "path": pointer("metadata", "ownerReferences"), "value": [dict(owner_reference)]}]
    )
    operations += _remove_keys(metadata, "labels", (RETAINED_LABEL,))
    operations += _remove_keys(metadata, "annotations", (RETAINED_FROM_ANNOTATION, RETAINED_AT_ANNOTATION))
    return operations


def _set_map(metadata: Mapping[str, Any], field: str, values: Mapping[str, str]) -> Operations:
    if not metadata.get(field):
        return [{"op": "add", "path": pointer("metadata", field), "value": dict(values)}]
    return [{"op": "add", "path": pointer("metadata", field, key), "value": v} for key, v in values.items()]


def _remove_keys(metadata: Mapping[str, Any], field: str, keys: Sequence[str]) -> Operations:
    present = metadata.get(field) or {}
    return [{"op": "remove", "path": pointer("metadata", field, key)} for key in keys if key in present]
