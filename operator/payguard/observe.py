"""Owns the first step of a pass: one immutable snapshot of everything the pass reads, from the cache."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from payguard.cache import ObjectCache
from payguard.kinds import (
    AUTHORIZATION_POLICIES,
    CERTIFICATE_REQUESTS,
    CHILD_TYPES,
    PAYMENT_SERVICES,
    PEER_AUTHENTICATIONS,
)
from payguard.model import InvalidSpec, PaymentService
from payguard.posture.certificates import issuer_key
from payguard.spec import parse_payment_service

ChildKey = tuple[str, str, str]  # (kind, namespace, name)
Body = Mapping[str, Any]
# Kinds whose policies in the mesh root namespace apply to every namespace.
MESH_WIDE_KINDS = (PEER_AUTHENTICATIONS.kind, AUTHORIZATION_POLICIES.kind)


@dataclass(frozen=True)
class Snapshot:
    """Every input of one pass, read once: what the pass converges and judges is what it saw."""

    # Every object of a generated kind in the service's namespace, payguard's or not, by (kind, ns, name).
    namespace_objects: Mapping[ChildKey, Body]
    # Istio policies of the mesh root namespace, when that is another namespace, by kind.
    mesh_root_objects: Mapping[str, tuple[Body, ...]]
    # The other PaymentServices of the namespace that parse (a broken one claims nothing).
    other_services: tuple[PaymentService, ...]
    issuer: Body | None
    certificate_requests: tuple[Body, ...]

    def of_kind(self, kind: str) -> list[Body]:
        """Every observed object of a kind that can reach the service's workloads."""
        namespace = [obj for (k, _, _), obj in self.namespace_objects.items() if k == kind]
        return [*self.mesh_root_objects.get(kind, ()), *namespace]

    def after(self, *, written: Mapping[ChildKey, Body], removed: Iterable[ChildKey]) -> Snapshot:
        """The snapshot as the pass left it: the watch may not have delivered the pass's own writes yet."""
        objects = {**self.namespace_objects, **written}
        for key in removed:
            objects.pop(key, None)
        return replace(self, namespace_objects=MappingProxyType(objects))


def observe(service: PaymentService, cache: ObjectCache, *, mesh_root_namespace: str) -> Snapshot:
    namespace = service.namespace
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
    return Snapshot(
        namespace_objects=MappingProxyType(objects),
        mesh_root_objects=MappingProxyType(mesh_root),
        other_services=_other_services(service, cache),
        issuer=cache.get(issuer_kind, namespace=issuer_namespace, name=issuer_name),
        certificate_requests=tuple(cache.list(CERTIFICATE_REQUESTS.kind, namespaces=[namespace])),
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
