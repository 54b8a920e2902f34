"""Owns reading live object dicts: fields, references, age, ownership and label selection.

Live objects are plain dicts (camelCase, as the Kubernetes API serves them); a missing or mistyped field
reads as empty, never raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from payguard.kinds import MANAGED_BY_LABEL, MANAGED_BY_VALUE

# An object the API server never stored has no creation time; it cannot be older than one it did store.
_NOT_YET_CREATED = datetime.max.replace(tzinfo=UTC)


# --- ownership and selection -----------------------------------------------------------------------------


def is_owned_by(obj: Mapping[str, Any], *, service_uid: str) -> bool:
    """True when payguard manages obj for the PaymentService with this uid: its label and controller."""
    if not service_uid:
        return False  # an unsaved PaymentService owns nothing
    metadata = metadata_of(obj)
    if mapping(metadata.get("labels")).get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return False
    return any(
        reference.get("controller") is True and reference.get("uid") == service_uid
        for reference in mappings(metadata.get("ownerReferences"))
    )


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics against a pod's labels; None or {} selects everything."""
    if not selector:
        return True
    match_labels = mapping(selector.get("matchLabels"))
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    return all(
        _expression_matches(expression, labels) for expression in mappings(selector.get("matchExpressions"))
    )


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = expression.get("key")
    operator = expression.get("operator")
    values = sequence(expression.get("values"))
    value = labels.get(key) if isinstance(key, str) else None
    present = value is not None
    if operator == "In":
        return present and value in values
    if operator == "NotIn":
        return not present or value not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    return False  # the API server rejects other operators; should one slip through, it selects nothing


# --- age -------------------------------------------------------------------------------------------------


def age_key(obj: Mapping[str, Any]) -> tuple[datetime, str]:
    """Sorts oldest first, ties broken by name."""
    return creation_time(obj), name_of(obj)


def creation_time(obj: Mapping[str, Any]) -> datetime:
    text = metadata_of(obj).get("creationTimestamp")
    if not isinstance(text, str):
        return _NOT_YET_CREATED
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _NOT_YET_CREATED
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_being_deleted(obj: Mapping[str, Any]) -> bool:
    return bool(metadata_of(obj).get("deletionTimestamp"))


# --- fields and references -------------------------------------------------------------------------------


def metadata_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(obj.get("metadata"))


def spec_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(obj.get("spec"))


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(metadata_of(obj).get("namespace") or "")


def name_of(obj: Mapping[str, Any]) -> str:
    return str(metadata_of(obj).get("name") or "")


def namespaced_name(obj: Mapping[str, Any]) -> str:
    return f"{namespace_of(obj)}/{name_of(obj)}"


def reference_of(kind: str, obj: Mapping[str, Any]) -> str:
    """How a finding names an object: `Kind namespace/name`."""
    return f"{kind} {namespaced_name(obj)}"


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def mappings(value: object) -> tuple[Mapping[str, Any], ...]:
    return tuple(item for item in sequence(value) if isinstance(item, Mapping))
