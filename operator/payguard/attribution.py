"""Owns who drifted a child (pure): from the object's metadata.managedFields, the field managers (other
than payguard) that own the drifted fields, as `kubectl-edit (Update)`, so an auditor reads who did it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from payguard.kinds import FIELD_MANAGER

_TOKEN = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


def drift_authors(managed_fields: Sequence[Mapping[str, Any]], paths: Iterable[str]) -> tuple[str, ...]:
    """The managers that own any drifted path; when none can be matched (a field removed, an atomic list
    rewritten), the one that wrote last. Empty when only payguard ever wrote the object."""
    others = [entry for entry in managed_fields if entry.get("manager") != FIELD_MANAGER]
    keyed = [_keys(path) for path in paths]
    owners = [
        entry for entry in others if any(_owns(entry.get("fieldsV1") or {}, keys) for keys in keyed if keys)
    ]
    if not owners and others:
        owners = [max(others, key=lambda entry: str(entry.get("time") or ""))]
    return tuple(dict.fromkeys(f"{e.get('manager', '?')} ({e.get('operation', '?')})" for e in owners))


def _keys(path: str) -> tuple[str, ...]:
    """`spec.rules[0].from` -> (spec, rules): list items are atomic in managedFields of payguard's kinds;
    `metadata.annotations[istio.io/dry-run]` -> (metadata, annotations, istio.io/dry-run)."""
    keys: list[str] = []
    for name, bracketed in _TOKEN.findall(path):
        if bracketed.isdigit():
            break
        keys.append(name or bracketed)
    return tuple(keys)


def _owns(fields: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    node: Any = fields
    for key in keys:
        node = node.get(f"f:{key}") if isinstance(node, Mapping) else None
        if node is None:
            return False
        if node == {}:  # a leaf: the manager owns this field's whole value
            return True
    return True
