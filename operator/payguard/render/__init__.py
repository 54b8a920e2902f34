"""Owns the translation of a PaymentService into the manifests payguard keeps in place (pure, no I/O)."""

from __future__ import annotations

from payguard.dataplane import SIDECAR_ONLY, Dataplanes
from payguard.model import Enforcement, PaymentService
from payguard.platform import Platform
from payguard.render.ambient import ambient_authorization_policies, ambient_network_policy
from payguard.render.certificates import certificate
from payguard.render.istio import authorization_policy, peer_authentication
from payguard.render.metadata import (
    ChildKind,
    Manifest,
    child_key,
    owner_reference,
    rendered_hash,
    with_rendered_hash,
)
from payguard.render.network import network_policy

__all__ = [
    "ChildKind",
    "Manifest",
    "child_key",
    "owner_reference",
    "render_children",
    "rendered_hash",
    "with_rendered_hash",
]


def render_children(
    service: PaymentService, *, platform: Platform, dataplanes: Dataplanes = SIDECAR_ONLY
) -> tuple[Manifest, ...]:
    """Every child payguard wants for the service, in the order they are applied.

    Enforce: PeerAuthentication (STRICT), AuthorizationPolicy, NetworkPolicy and Certificate per workload.
    Audit: the AuthorizationPolicy marked dry-run and the Certificate, so nothing that could block traffic
    is written. Workloads in ambient mode (`dataplanes`, observed) get what ztunnel and waypoints need.
    """
    audit = service.enforcement is Enforcement.AUDIT
    children: list[Manifest] = []
    for workload in service.workloads:
        if not audit:
            children.append(peer_authentication(service, workload))
        plane = dataplanes.of(workload.name)
        if plane.ambient:
            children += ambient_authorization_policies(service, workload, plane, dry_run=audit)
        else:
            children.append(authorization_policy(service, workload, dry_run=audit))
        if not audit:
            policy = network_policy(service, workload, platform=platform)
            children.append(ambient_network_policy(policy, service, workload, dataplanes))
        children.append(certificate(service, workload))
    return tuple(with_rendered_hash(child) for child in children)
