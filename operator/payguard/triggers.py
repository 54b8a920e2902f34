"""Owns the mapping from a watch event to the PaymentServices it affects (pure: reads the cache only).

Our own child wakes its parent; a PaymentServiceException the PaymentService it names; a CertificateRequest
wakes the service owning its Certificate; a pod or ServiceAccount wakes the services of its namespace that
select or declare it (a waypoint's pod: all of them); a Service or Namespace wakes its namespace's services;
anything else (a foreign policy, an issuer, the mesh config) wakes every service it may weaken, widen or
sign for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from payguard.kinds import (
    CERTIFICATE_NAME_ANNOTATION,
    CERTIFICATE_REQUESTS,
    CERTIFICATES,
    GATEWAY_NAME_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    NAMESPACES,
    PAYMENT_SERVICE_EXCEPTIONS,
    PAYMENT_SERVICES,
    PODS,
    SERVICE_ACCOUNTS,
    SERVICE_LABEL,
    SERVICES,
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
    if resource in (PODS, SERVICE_ACCOUNTS, SERVICES, NAMESPACES):
        return _services_near(resource, metadata, index)
    namespace = metadata.get("namespace", "")
    labels = metadata.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and labels.get(SERVICE_LABEL):
        return [(namespace, labels[SERVICE_LABEL])]
    if resource.kind == PAYMENT_SERVICE_EXCEPTIONS.kind:
        target = (obj.get("spec") or {}).get("paymentService")
        return [(namespace, target)] if isinstance(target, str) and target else []
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


def _services_near(resource: ResourceType, metadata: Mapping[str, Any], index: Index) -> list[ServiceKey]:
    """Services a pod, ServiceAccount, Service or Namespace concerns: never beyond its namespace."""
    if resource == NAMESPACES:
        return known_services(index, namespace=metadata["name"])
    namespace = metadata.get("namespace", "")
    if resource == PODS:
        labels = metadata.get("labels") or {}
        if GATEWAY_NAME_LABEL in labels:  # a waypoint's pod: its identity is in ambient workloads' policies
            return known_services(index, namespace=namespace)
        return _services_whose_workloads(index, namespace, lambda w: _selects(w.get("selector"), labels))
    if resource == SERVICE_ACCOUNTS:
        name = metadata["name"]
        return _services_whose_workloads(index, namespace, lambda w: w.get("serviceAccount") == name)
    return known_services(index, namespace=namespace)


def _services_whose_workloads(
    index: Index, namespace: str, concerns: Callable[[Mapping[str, Any]], bool]
) -> list[ServiceKey]:
    """The namespace's PaymentServices with a workload (read from the raw spec) that `concerns` the object:
    a pod churn wakes only the services that select those pods."""
    return sorted(
        {
            (namespace, body["metadata"]["name"])
            for body in index.list(PAYMENT_SERVICES.kind, namespaces=[namespace])
            if any(
                concerns(w) for w in (body.get("spec") or {}).get("workloads") or [] if isinstance(w, Mapping)
            )
        }
    )


def _selects(selector: object, labels: Mapping[str, str]) -> bool:
    if not isinstance(selector, Mapping) or not selector:
        return False
    return all(labels.get(key) == value for key, value in selector.items())
