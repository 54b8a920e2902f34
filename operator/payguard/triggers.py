"""Owns the mapping from a watch event to the PaymentServices it affects (pure: reads the cache only).

Our own child wakes its parent; a CertificateRequest wakes the service owning its Certificate; anything
else (a foreign policy, an issuer) wakes every service it may weaken, widen or sign for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from payguard.kinds import (
    CERTIFICATE_NAME_ANNOTATION,
    CERTIFICATE_REQUESTS,
    CERTIFICATES,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PAYMENT_SERVICES,
    SERVICE_LABEL,
    ResourceType,
)

ServiceKey = tuple[str, str]  # (namespace, name)


class Index(Protocol):
    """The cache reads triggers need (`cache.ObjectCache` has them)."""

    def get(self, kind: str, *, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list(self, kind: str, *, namespaces: Iterable[str] | None = None) -> list[dict[str, Any]]: ...


def affected_services(
    resource: ResourceType, obj: Mapping[str, Any], index: Index, *, mesh_root_namespace: str
) -> list[ServiceKey]:
    """The known PaymentServices whose pass may come out differently now that `obj` changed."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace", "")
    labels = metadata.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and labels.get(SERVICE_LABEL):
        return [(namespace, labels[SERVICE_LABEL])]
    if resource.kind == CERTIFICATE_REQUESTS.kind:
        certificate_name = (metadata.get("annotations") or {}).get(CERTIFICATE_NAME_ANNOTATION, "")
        owner = index.get(CERTIFICATES.kind, namespace=namespace, name=certificate_name)
        service = ((owner or {}).get("metadata", {}).get("labels") or {}).get(SERVICE_LABEL)
        return [(namespace, service)] if service else []
    if not resource.namespaced or namespace == mesh_root_namespace:
        return known_services(index)
    return known_services(index, namespace=namespace)


def known_services(index: Index, *, namespace: str | None = None) -> list[ServiceKey]:
    """Known PaymentServices, all or one namespace's (read from the namespace index), sorted."""
    namespaces = None if namespace is None else [namespace]
    return sorted(
        {
            (body["metadata"]["namespace"], body["metadata"]["name"])
            for body in index.list(PAYMENT_SERVICES.kind, namespaces=namespaces)
        }
    )
