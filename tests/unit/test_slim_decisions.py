"""What the cache drops is never read: a pass over slimmed objects decides exactly what it decides over
whole ones (drift, conflicts, posture, certificates, conditions, status), and retention's JSON patches are
the same."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from cache_world import fattened, whole_only, world_objects
from pass_world import NOW
from payguard import cache as cache_module
from payguard.cache import ObjectCache
from payguard.drift import detect_drift
from payguard.judge import judge
from payguard.observe import observe
from payguard.render import render_children, with_rendered_hash
from payguard.retention import adopt, detach
from payguard.settings import Platform
from payguard.slim import LAST_APPLIED_ANNOTATION, slim
from payguard.spec import parse_payment_service


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
