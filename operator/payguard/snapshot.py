"""Owns the snapshot a pass works from: every input of one pass, immutable, so the pass converges and
judges exactly what it saw."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from payguard.dataplane import SIDECAR_ONLY, Dataplanes
from payguard.kinds import AUTHORIZATION_POLICIES, PEER_AUTHENTICATIONS
from payguard.model import PaymentService

ChildKey = tuple[str, str, str]  # (kind, namespace, name)
Body = Mapping[str, Any]
# Kinds whose policies in the mesh root namespace apply to every namespace.
MESH_WIDE_KINDS = (PEER_AUTHENTICATIONS.kind, AUTHORIZATION_POLICIES.kind)


@dataclass(frozen=True)
class Snapshot:
    """Every input of one pass, read once: what the pass converges and judges is what it saw."""

    # The objects of a generated kind in the service's namespace that concern this pass, payguard's or not,
    # by (kind, ns, name): those at its children's names, those labelled as its children, and the
    # policies that may select its workloads (see observe).
    namespace_objects: Mapping[ChildKey, Body]
    # Istio policies of the mesh root namespace that may select its workloads, when that is another
    # namespace, by kind.
    mesh_root_objects: Mapping[str, tuple[Body, ...]]
    # The other PaymentServices of the namespace that parse and declare one of its ServiceAccounts (a
    # broken one claims nothing).
    other_services: tuple[PaymentService, ...]
    issuer: Body | None
    certificate_requests: tuple[Body, ...]
    # The pods its workloads may select, which of its declared ServiceAccounts exist, the Services that
    # select those pods, and the namespace itself: where the controls land. ServiceAccounts are None when
    # they cannot be observed.
    pods: tuple[Body, ...]
    service_accounts: frozenset[str] | None
    services: tuple[Body, ...]
    namespace: Body | None
    # Istio's mesh config ConfigMap, when it exists and can be read.
    mesh_config: Body | None
    # Kinds that cannot be observed now, with why (a CRD not served, RBAC refusing the list).
    unobserved: Mapping[str, str]
    # Each workload's Istio data plane (sidecar or ambient, and its waypoints), read from the above.
    dataplanes: Dataplanes = SIDECAR_ONLY

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
