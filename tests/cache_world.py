"""A settled checkout with everything a pass reads and what it need not: issued certificates (with their
requests' CSR and CA), an issuer with a large spec, a foreign policy, and every object fattened as
clients leave them. Shared by the slim-decision tests and bench/cache_footprint.py."""

from __future__ import annotations

import base64
import copy
import functools
from datetime import timedelta
from typing import Any

import pki
from pass_world import NOW, World
from payguard.kinds import CERTIFICATE_NAME_ANNOTATION, CERTIFICATE_REVISION_ANNOTATION
from payguard.slim import LAST_APPLIED_ANNOTATION
from payguard.spec import parse_payment_service

Body = dict[str, Any]
LAST_APPLIED = (
    '{"apiVersion":"v1","kind":"Whatever","metadata":{"name":"x"},"spec":{"big":"' + "x" * 2000 + '"}}'
)
ISTIO_STATUS = {
    "conditions": [{"type": "Reconciled", "status": "True"}],
    "validationMessages": [{"type": {"code": "IST0101"}, "documentationUrl": "https://istio.io"}],
    "observedGeneration": "1",
}


def whole_only(kind: str, body: Any) -> dict[str, Any]:
    """What the cache kept before: everything but managedFields."""
    metadata = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
    return {**body, "metadata": metadata}


def fattened(body: Body) -> Body:
    """An object as clients leave it: kubectl's last-applied copy, Istio's status, managedFields."""
    body = copy.deepcopy(body)
    metadata = body["metadata"]
    metadata["annotations"] = {**(metadata.get("annotations") or {}), LAST_APPLIED_ANNOTATION: LAST_APPLIED}
    metadata["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    if body["kind"] in ("PeerAuthentication", "AuthorizationPolicy", "NetworkPolicy"):
        body["status"] = copy.deepcopy(ISTIO_STATUS)
    return body


@functools.cache
def ca() -> pki.Authority:
    return pki.authority(
        "cache world CA", not_before=NOW - timedelta(days=30), not_after=NOW + timedelta(days=365)
    )


@functools.cache
def key() -> pki.PrivateKey:
    return pki.private_key("ECDSA", 256)


def signed(uri: str, *, hours_left: float) -> str:
    not_after = NOW + timedelta(hours=hours_left)
    issued = ca().issue(
        key().public_key(),
        uris=(uri,),
        dns_names=(),
        not_before=not_after - timedelta(hours=24),
        not_after=not_after,
        serial=0x1234,
    )
    return pki.b64(pki.pem(issued, ca().certificate))


def request(name: str, certificate: str, revision: int, *, pem: str | None, denied: bool = False) -> Body:
    status: Body = {"ca": pki.b64(pki.pem(ca().certificate)), "conditions": []}
    if pem is not None:
        status |= {
            "certificate": pem,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Issued"}],
        }
    if denied:
        status["conditions"] = [{"type": "Denied", "status": "True", "reason": "policy", "message": "no"}]
    annotations = {CERTIFICATE_NAME_ANNOTATION: certificate, CERTIFICATE_REVISION_ANNOTATION: str(revision)}
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "CertificateRequest",
        "metadata": {
            "name": name,
            "namespace": "payments",
            "uid": f"u-{name}",
            "resourceVersion": "5",
            "creationTimestamp": "2031-03-04T00:00:00Z",
            "annotations": annotations,
        },
        "spec": {
            "request": base64.b64encode(b"-----BEGIN CERTIFICATE REQUEST-----" + b"A" * 900).decode(),
            "usages": ["digital signature"],
            "issuerRef": {"name": "payments-ca"},
        },
        "status": status,
    }


def world_objects() -> tuple[Body, list[Body]]:
    """A settled checkout whose certificates are issued, with a foreign policy, a retained control, a
    name clash, an issuer with a large spec, and every object fattened."""
    world = World()
    body = world.settled("checkout")
    objects = []
    for kind in (
        "PeerAuthentication",
        "AuthorizationPolicy",
        "NetworkPolicy",
        "Certificate",
        "Pod",
        "ServiceAccount",
        "Service",
        "Namespace",
    ):
        objects += world.cluster.stored(kind)
    service = parse_payment_service(body)
    for index, workload in enumerate(service.workloads):
        name = service.child_name(workload)
        uri = service.principal_of(workload).spiffe_id(service.trust_domain)
        hours = (20, 6, 1, -1)[index]  # issued, overdue, expiring, expired
        objects.append(request(f"{name}-1", name, 1, pem=signed(uri, hours_left=hours)))
        if index == 1:
            objects.append(request(f"{name}-2", name, 2, pem=None, denied=True))
    for certificate in [o for o in objects if o["kind"] == "Certificate"]:
        certificate["status"] = {"revision": 1, "conditions": [{"type": "Ready", "status": "True"}]}
    objects.append(
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": {"name": "payments-ca", "uid": "u-ca", "resourceVersion": "1"},
            "spec": {"ca": {"secretName": "payments-ca", "crlDistributionPoints": ["http://crl"] * 20}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KeyPairVerified"}]},
        }
    )
    objects.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "team-allow", "namespace": "payments", "uid": "u-t", "resourceVersion": "1"},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "order-service"}},
                "ingress": [{}],
            },
        }
    )
    return world.latest(body), [fattened(o) for o in objects]


def plain(body: Body) -> Body:
    """Without what `fattened` added: no last-applied copy, no Istio status, no managedFields."""
    metadata = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
    annotations = metadata.get("annotations") or {}
    metadata["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED_ANNOTATION}
    kept = {**body, "metadata": metadata}
    if body["kind"] in ("PeerAuthentication", "AuthorizationPolicy", "NetworkPolicy"):
        kept.pop("status", None)
    return kept
