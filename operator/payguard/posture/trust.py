"""Owns whether the mesh trusts the PaymentService's trust domain (pure): every principal payguard
renders (`<trust domain>/ns/<ns>/sa/<sa>`) matches only if the mesh's trust domain, or one of its
aliases, is that domain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

DEFAULT_TRUST_DOMAIN = "cluster.local"  # Istio's, when the mesh config names none


@dataclass(frozen=True)
class TrustDomainCheck:
    accepted: bool | None  # None: the mesh config cannot be read, so nothing is judged
    message: str


def trust_domain_check(
    trust_domain: str, mesh_config: Mapping[str, Any] | None, *, where: str, unreadable: str | None
) -> TrustDomainCheck:
    """`where` names the mesh config (`istio-system/istio`); `unreadable` says why it cannot be read."""
    if unreadable:
        return TrustDomainCheck(None, f"trust domain not checked: {unreadable}")
    if mesh_config is None:
        return TrustDomainCheck(None, f"trust domain not checked: no mesh config ConfigMap {where}")
    try:
        mesh = yaml.safe_load((mesh_config.get("data") or {}).get("mesh") or "") or {}
    except yaml.YAMLError as error:
        return TrustDomainCheck(None, f"trust domain not checked: mesh config {where} is not YAML ({error})")
    if not isinstance(mesh, Mapping):
        return TrustDomainCheck(None, f"trust domain not checked: mesh config {where} is not a mapping")
    domain = str(mesh.get("trustDomain") or DEFAULT_TRUST_DOMAIN)
    aliases = [str(alias) for alias in mesh.get("trustDomainAliases") or []]
    if trust_domain == domain or trust_domain in aliases:
        return TrustDomainCheck(True, f"the mesh accepts trust domain {trust_domain}")
    also = (
        f" nor one of its trustDomainAliases ({', '.join(aliases)})"
        if aliases
        else " and has no alias for it"
    )
    return TrustDomainCheck(
        False,
        f"trust domain {trust_domain} is not the mesh's ({domain}, mesh config {where}){also}: no principal "
        "rule of this PaymentService can match, so its callers are denied",
    )
