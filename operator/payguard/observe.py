"""Owns the first step of a pass: reading, from the cache, the one snapshot a pass works from."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from payguard.cache import ObjectCache
from payguard.dataplane import SIDECAR_ONLY, Dataplanes, dataplanes
from payguard.index import SELECTOR_PATHS
from payguard.kinds import (
    CERTIFICATE_REQUESTS,
    CHILD_TYPES,
    GATEWAY_NAME_LABEL,
    MESH_CONFIGS,
    NAMESPACES,
    PAYMENT_SERVICE_EXCEPTIONS,
    PAYMENT_SERVICES,
    PODS,
    SERVICE_ACCOUNTS,
    SERVICES,
    USE_WAYPOINT_LABEL,
)
from payguard.model import InvalidSpec, PaymentService
from payguard.posture.certificates import issuer_key
from payguard.snapshot import MESH_WIDE_KINDS, Body, Snapshot
from payguard.spec import parse_payment_service


def observe(
    service: PaymentService, cache: ObjectCache, *, mesh_root_namespace: str, mesh_config_name: str
) -> Snapshot:
    """Reads only what concerns this service, through the cache's indexes: a pass costs the same however
    many other PaymentServices share its namespace."""
    namespace = service.namespace
    unobserved = cache.unavailable()
    objects = {
        (kind, namespace, obj["metadata"]["name"]): obj
        for kind in CHILD_TYPES
        for obj in _concerning(service, cache, kind, namespace)
    }
    mesh_root = {
        kind: tuple(_by_name(_selecting(service, cache, kind, mesh_root_namespace)))
        for kind in MESH_WIDE_KINDS
        if mesh_root_namespace != namespace
    }
    issuer_kind, issuer_namespace, issuer_name = issuer_key(service.certificates, namespace=namespace)
    pods = _by_name(
        pod
        for workload in service.workloads
        for pod in cache.labelled(PODS.kind, namespace=namespace, labels=workload.match_labels)
    )
    accounts = {workload.service_account for workload in service.workloads}
    namespace_body = cache.get(NAMESPACES.kind, namespace="", name=namespace)
    return Snapshot(
        namespace_objects=MappingProxyType(objects),
        mesh_root_objects=MappingProxyType(mesh_root),
        other_services=_other_services(service, cache),
        issuer=cache.get(issuer_kind, namespace=issuer_namespace, name=issuer_name),
        certificate_requests=tuple(
            _by_name(
                request
                for workload in service.workloads
                for request in cache.keyed(
                    CERTIFICATE_REQUESTS.kind,
                    namespace=namespace,
                    key=("certificate", service.child_name(workload)),
                )
            )
        ),
        pods=pods,
        service_accounts=None
        if SERVICE_ACCOUNTS.kind in unobserved
        else frozenset(
            account
            for account in accounts
            if cache.get(SERVICE_ACCOUNTS.kind, namespace=namespace, name=account) is not None
        ),
        services=_by_name(
            found
            for pod in pods
            for found in cache.selecting(
                SERVICES.kind, namespace=namespace, labels=pod["metadata"].get("labels") or {}
            )
        ),
        namespace=namespace_body,
        mesh_config=cache.get(MESH_CONFIGS.kind, namespace=mesh_root_namespace, name=mesh_config_name),
        unobserved=MappingProxyType(unobserved),
        dataplanes=_dataplanes(service, cache, namespace_body, pods, unobserved),
    )


def _dataplanes(
    service: PaymentService,
    cache: ObjectCache,
    namespace: Body | None,
    pods: tuple[Body, ...],
    unobserved: dict[str, str],
) -> Dataplanes:
    """Ambient mode is read from what is observed, never guessed: blind to the namespace, its pods or
    Services, every workload is rendered for sidecar mode, which opens nothing ambient would need."""
    if any(kind in unobserved for kind in (NAMESPACES.kind, PODS.kind, SERVICES.kind)):
        return SIDECAR_ONLY
    name = service.namespace
    # The Services that may serve a workload: those selecting its pods, or its labels while it has none.
    label_sets = [pod["metadata"].get("labels") or {} for pod in pods]
    label_sets += [workload.match_labels for workload in service.workloads]
    services = _by_name(
        found
        for labels in label_sets
        for found in cache.selecting(SERVICES.kind, namespace=name, labels=labels)
    )
    # The waypoints they (or the namespace) name, whose pods tell the waypoint's ServiceAccount.
    named = {
        (body["metadata"].get("labels") or {}).get(USE_WAYPOINT_LABEL)
        for body in (*services, namespace or {"metadata": {}})
    }
    waypoint_pods = (
        pod
        for waypoint in sorted(str(n) for n in named if n)
        for pod in cache.labelled(PODS.kind, namespace=name, labels={GATEWAY_NAME_LABEL: waypoint})
    )
    return dataplanes(service, namespace=namespace, pods=_by_name([*pods, *waypoint_pods]), services=services)


def observe_exceptions(service: PaymentService, cache: ObjectCache) -> tuple[Body, ...]:
    """The PaymentServiceExceptions of the namespace that name this PaymentService, active or not."""
    return tuple(
        body
        for body in cache.keyed(
            PAYMENT_SERVICE_EXCEPTIONS.kind, namespace=service.namespace, key=("for", service.name)
        )
        if (body.get("spec") or {}).get("paymentService") == service.name
    )


def _concerning(service: PaymentService, cache: ObjectCache, kind: str, namespace: str) -> tuple[Body, ...]:
    """Objects of a generated kind a pass may act on or judge: those at its children's names (its own, or
    a foreign one in the way), those labelled as its children (to prune), and policies that may select
    its workloads."""
    at_names = (
        cache.get(kind, namespace=namespace, name=service.child_name(workload))
        for workload in service.workloads
    )
    return _by_name(
        [
            *(obj for obj in at_names if obj is not None),
            *cache.keyed(kind, namespace=namespace, key=("owner", service.name)),
            *_selecting(service, cache, kind, namespace),
        ]
    )


def _selecting(service: PaymentService, cache: ObjectCache, kind: str, namespace: str) -> list[Body]:
    if kind not in SELECTOR_PATHS:
        return []
    return [
        obj
        for workload in service.workloads
        for obj in cache.selecting(kind, namespace=namespace, labels=workload.match_labels)
    ]


def _by_name(bodies: Iterable[Body]) -> tuple[Body, ...]:
    """Each object once, in name order (one kind, one namespace)."""
    unique = {body["metadata"]["name"]: body for body in bodies}
    return tuple(unique[name] for name in sorted(unique))


def _other_services(service: PaymentService, cache: ObjectCache) -> tuple[PaymentService, ...]:
    """The namespace's other PaymentServices that declare one of this service's ServiceAccounts: the only
    ones a pass compares with (a shared identity)."""
    bodies = _by_name(
        body
        for workload in service.workloads
        for body in cache.keyed(
            PAYMENT_SERVICES.kind, namespace=service.namespace, key=("account", workload.service_account)
        )
    )
    others = []
    for body in bodies:
        if body["metadata"].get("uid") != service.uid:
            parsed = cache.parsed(body, parse_or_none)
            if parsed is not None:
                others.append(parsed)
    return tuple(others)


def parse_or_none(body: Body) -> PaymentService | None:
    """The parsed PaymentService, or None when its spec is invalid (a broken neighbour claims nothing)."""
    try:
        return parse_payment_service(body)
    except InvalidSpec:
        return None


def parsed_service(body: Body, cache: ObjectCache) -> PaymentService:
    """The PaymentService of `body`, parsed once per resourceVersion (the cache remembers it); raises
    InvalidSpec, naming the field, when the spec is invalid."""
    metadata = body["metadata"]
    known = (
        cache.parsed(body, parse_or_none) if metadata.get("uid") and metadata.get("resourceVersion") else None
    )
    return known if known is not None else parse_payment_service(body)
