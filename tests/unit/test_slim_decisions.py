"""What the cache drops is never read: a pass over slimmed objects decides exactly what it decides over
whole ones (drift, conflicts, posture, certificates, conditions, status), and retention's JSON patches are
the same."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_certificates import ca, key

import pki
from pass_world import NOW, World
from payguard import cache as cache_module
from payguard.cache import ObjectCache
from payguard.drift import detect_drift
from payguard.judge import judge
from payguard.kinds import CERTIFICATE_NAME_ANNOTATION, CERTIFICATE_REVISION_ANNOTATION
from payguard.observe import observe
from payguard.render import render_children, with_rendered_hash
from payguard.retention import adopt, detach
from payguard.settings import Platform
from payguard.slim import LAST_APPLIED_ANNOTATION, slim
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


def signed(uri: str, *, hours_left: float) -> str:
    not_after = NOW + timedelta(hours=hours_left)
    issued = ca().issue(
        key("p256").public_key(),
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


def decisions(
    slimmer: Callable[[str, Any], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    body, objects = world_objects()
    with monkeypatch.context() as patch:
        patch.setattr(cache_module, "slim", slimmer)
        cache = ObjectCache()
        for obj in [fattened(body), *objects]:
            cache.put(obj["kind"], obj)
        live_body = cache.get("PaymentService", namespace="payments", name="checkout")
    assert live_body is not None
    service = parse_payment_service(live_body)
    snapshot = observe(service, cache, mesh_root_namespace="istio-system", mesh_config_name="istio")
    desired = [with_rendered_hash(m) for m in render_children(service, platform=Platform())]
    lives = [snapshot.namespace_objects.get((m["kind"], "payments", m["metadata"]["name"])) for m in desired]
    verdict = judge(
        service,
        live_body,
        snapshot,
        [],
        mesh_root_namespace="istio-system",
        mesh_config_name="istio",
        fights=[],
        now=NOW,
    )
    now = datetime(2031, 3, 4, tzinfo=UTC)
    return {
        "drift": [detect_drift(m, live) if live else None for m, live in zip(desired, lives, strict=True)],
        "conditions": verdict.conditions,
        "summaries": verdict.summaries,
        "certificates": verdict.certificates,
        "next": verdict.next_certificate_change,
        "detach": [
            detach(live, service_uid=service.uid, service_ref="payments/checkout", now=now)
            for live in lives
            if live
        ],
        "adopt": [adopt(live, owner_reference={"uid": "new"}) for live in lives if live],
    }


def test_a_pass_over_slimmed_objects_decides_what_it_decides_over_whole_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = decisions(whole_only, monkeypatch)
    slimmed = decisions(slim, monkeypatch)
    assert slimmed == whole
    # The fixture reaches every certificate posture it set up, so the comparison can fail.
    reasons = {c.reason for c in whole["certificates"]}
    assert reasons == {"Issued", "RenewalOverdue", "ExpiringSoon", "Expired"}, reasons
    assert any("team-allow" in c.message for c in whole["conditions"]), whole["conditions"]


def test_slimming_drops_the_heavy_fields_no_pass_reads() -> None:
    _, objects = world_objects()
    by_kind = {o["kind"]: o for o in objects}
    policy = slim("AuthorizationPolicy", by_kind["AuthorizationPolicy"])
    assert "status" not in policy and "managedFields" not in policy["metadata"]
    assert policy["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] == ""
    requests = [o for o in objects if o["kind"] == "CertificateRequest"]
    kept = slim("CertificateRequest", requests[0])
    assert "spec" not in kept and "ca" not in kept["status"] and kept["status"]["certificate"]
    issuer = slim("ClusterIssuer", by_kind["ClusterIssuer"])
    assert "spec" not in issuer and issuer["status"]["conditions"]
    assert sum(map(len, map(str, map(lambda o: slim(o["kind"], o), objects)))) < 0.5 * sum(
        map(len, map(str, objects))
    )
