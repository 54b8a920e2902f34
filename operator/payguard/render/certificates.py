"""Owns a workload's cert-manager Certificate: a short-lived SPIFFE identity with a fresh key each renewal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from payguard.model import KeyAlgorithm, PaymentService, Workload
from payguard.render.metadata import ChildKind, Manifest, child_manifest

# Server and client auth: the same identity terminates and originates mutual TLS.
USAGES = ("digital signature", "server auth", "client auth")


def certificate_secret_name(service: PaymentService, workload: Workload) -> str:
    return f"{service.child_name(workload)}-tls"


def certificate(service: PaymentService, workload: Workload) -> Manifest:
    policy = service.certificates
    private_key: dict[str, Any] = {
        "algorithm": str(policy.private_key.algorithm),
        "rotationPolicy": str(policy.private_key.rotation_policy),
    }
    if policy.private_key.algorithm is not KeyAlgorithm.ED25519:
        # Always written: cert-manager's own RSA default (2048 bits) is below policy.
        private_key["size"] = policy.private_key.size
    spec: dict[str, Any] = {
        "secretName": certificate_secret_name(service, workload),
        "issuerRef": {
            "name": policy.issuer_ref.name,
            "kind": str(policy.issuer_ref.kind),
            "group": policy.issuer_ref.group,
        },
        "duration": go_duration(policy.duration),
        "renewBefore": go_duration(policy.renew_before),
        "uris": [service.principal_of(workload).spiffe_id(service.trust_domain)],
        "usages": list(USAGES),
        "privateKey": private_key,
        "revisionHistoryLimit": 2,  # old CertificateRequests are evidence for a while, not forever
    }
    return child_manifest(ChildKind.CERTIFICATE, service, workload, spec=spec)


def go_duration(value: timedelta) -> str:
    """The form Go's time.Duration prints (`24h0m0s`), so the live value reads back unchanged."""
    total = int(value.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes}m{seconds}s"
