"""Owns the drift the benchmark injects: edits that weaken a child (mTLS PERMISSIVE, an allow-all ingress
rule, an allow-all authorization rule) and deletions, each made as the admin with its own field manager.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from payguard.kinds import CHILD_TYPES

TAMPER_MANAGER = "bench-tamper"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Tampering:
    """One way of drifting a child: its kind, a name for the report, and how it changes the spec."""

    name: str
    kind: str
    edit: Callable[[dict[str, Any]], dict[str, Any]] | None  # None: delete the child


def _permissive(spec: dict[str, Any]) -> dict[str, Any]:
    return {"mtls": {"mode": "PERMISSIVE"}}


def _ingress_widened(spec: dict[str, Any]) -> dict[str, Any]:
    return {"ingress": [*(spec.get("ingress") or []), {}]}  # an empty rule admits every source


def _allow_all_rule(spec: dict[str, Any]) -> dict[str, Any]:
    return {"rules": [*(spec.get("rules") or []), {}]}  # an empty ALLOW rule matches every request


TAMPERINGS = (
    Tampering("PeerAuthentication mode PERMISSIVE", "PeerAuthentication", _permissive),
    Tampering("NetworkPolicy ingress widened", "NetworkPolicy", _ingress_widened),
    Tampering("AuthorizationPolicy allow-all rule", "AuthorizationPolicy", _allow_all_rule),
    Tampering("PeerAuthentication deleted", "PeerAuthentication", None),
    Tampering("NetworkPolicy deleted", "NetworkPolicy", None),
    Tampering("AuthorizationPolicy deleted", "AuthorizationPolicy", None),
)


def tamper(
    custom: client.CustomObjectsApi, tampering: Tampering, *, namespace: str, name: str, spec: dict[str, Any]
) -> int:
    """Applies the drift; returns the resourceVersion the edit produced (0 for a deletion)."""
    resource = CHILD_TYPES[tampering.kind]
    args = (resource.group, resource.version, namespace, resource.plural, name)
    if tampering.edit is None:
        custom.delete_namespaced_custom_object(*args)
        return 0
    patched = custom.patch_namespaced_custom_object(
        *args,
        {"spec": tampering.edit(spec)},
        field_manager=TAMPER_MANAGER,
        _content_type=MERGE_PATCH,
    )
    return int(patched["metadata"]["resourceVersion"])
