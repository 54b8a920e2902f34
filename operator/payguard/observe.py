"""Owns the first step of a pass: reading, from the cache, the one snapshot a pass works from."""

from __future__ import annotations

from types import MappingProxyType

from payguard.cache import ObjectCache
from payguard.dataplane import SIDECAR_ONLY, Dataplanes, dataplanes
from payguard.kinds import (
    CERTIFICATE_REQUESTS,
    CHILD_TYPES,
    MESH_CONFIGS,
    NAMESPACES,
    PAYMENT_SERVICE_EXCEPTIONS,
    PAYMENT_SERVICES,
    PODS,
    SERVICE_ACCOUNTS,
    SERVICES,
)
from payguard.model import InvalidSpec, PaymentService
from payguard.posture.certificates import issuer_key
from payguard.snapshot import MESH_WIDE_KINDS, Body, Snapshot
from payguard.spec import parse_payment_service


def observe(
    service: PaymentService, cache: ObjectCache, *, mesh_root_namespace: str, mesh_config_name: str
) -> Snapshot:
    namespace = service.namespace
    unobserved = cache.unavailable()
    objects = {
        (kind, namespace, obj["metadata"]["name"]): obj
        for kind in CHILD_TYPES
        for obj in cache.list(kind, namespaces=[namespace])
    }
    mesh_root = {
        kind: tuple(cache.list(kind, namespaces=[mesh_root_namespace]))
        for kind in MESH_WIDE_KINDS
        if mesh_root_namespace != namespace
    }
    issuer_kind, issuer_namespace, issuer_name = issuer_key(service.certificates, namespace=namespace)
    pods = tuple(cache.list(PODS.kind, namespaces=[namespace]))
    services = tuple(cache.list(SERVICES.kind, namespaces=[namespace]))
    namespace_body = cache.get(NAMESPACES.kind, namespace="", name=namespace)
    return Snapshot(
        namespace_objects=MappingProxyType(objects),
        mesh_root_objects=MappingProxyType(mesh_root),
        other_services=_other_services(service, cache),
        issuer=cache.get(issuer_kind, namespace=issuer_namespace, name=issuer_name),
        certificate_requests=tuple(cache.list(CERTIFICATE_REQUESTS.kind, namespaces=[namespace])),
        pods=pods,
        service_accounts=None
        if SERVICE_ACCOUNTS.kind in unobserved
        else frozenset(
            a["metadata"]["name"] for a in cache.list(SERVICE_ACCOUNTS.kind, namespaces=[namespace])
        ),
        services=services,
        namespace=namespace_body,
        mesh_config=cache.get(MESH_CONFIGS.kind, namespace=mesh_root_namespace, name=mesh_config_name),
        unobserved=MappingProxyType(unobserved),
        dataplanes=_dataplanes(service, namespace_body, pods, services, unobserved),
    )


def _dataplanes(
    service: PaymentService,
    namespace: Body | None,
    pods: tuple[Body, ...],
    services: tuple[Body, ...],
    unobserved: dict[str, str],
) -> Dataplanes:
    """Ambient mode is read from what is observed, never guessed: blind to the namespace, its pods or
    Services, every workload is rendered for sidecar mode, which opens nothing ambient would need."""
    if any(kind in unobserved for kind in (NAMESPACES.kind, PODS.kind, SERVICES.kind)):
        return SIDECAR_ONLY
    return dataplanes(service, namespace=namespace, pods=pods, services=services)


def observe_exceptions(service: PaymentService, cache: ObjectCache) -> tuple[Body, ...]:
    """The PaymentServiceExceptions of the namespace that name this PaymentService, active or not."""
    return tuple(
        body
        for body in cache.list(PAYMENT_SERVICE_EXCEPTIONS.kind, namespaces=[service.namespace])
        if (body.get("spec") or {}).get("paymentService") == service.name
    )


def _other_services(service: PaymentService, cache: ObjectCache) -> tuple[PaymentService, ...]:
    others = []
    for body in cache.list(PAYMENT_SERVICES.kind, namespaces=[service.namespace]):
        if body["metadata"].get("uid") != service.uid:
            parsed = cache.parsed(body, _parse_or_none)
            if parsed is not None:
                others.append(parsed)
    return tuple(others)


def _parse_or_none(body: Body) -> PaymentService | None:
    try:
        return parse_payment_service(body)
    except InvalidSpec:
        return None
