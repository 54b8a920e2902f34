"""How one pass's time grows with the PaymentServices beside it in its namespace: 10 to 200 checkout copies
(4 workloads, 16 children, one injected pod, a Service and a ServiceAccount per workload) in one
namespace, plus foreign policies and a mesh-wide PeerAuthentication, all settled in a cache as the watch
would hold them. Each measured pass is a whole `reconcile` (observe, render, converge, judge) with nothing
to change; the stand-in API counts its writes, which must stay 0.

A unit-level benchmark: no API server, no threads. Run `.venv/bin/python -m bench.posture_scaling`; the
result is written to bench/results/posture-scaling.json with the commit it measured.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

from bench import REPO
from bench.workload import checkout_copy, checkout_template
from payguard.cache import ObjectCache
from payguard.fights import DriftHistory
from payguard.kinds import FINALIZER, PAYMENT_SERVICES
from payguard.reconcile import PassContext, reconcile
from payguard.settings import Platform

RESULTS = Path(__file__).resolve().parent / "results" / "posture-scaling.json"
SIZES = (10, 25, 50, 100, 200)
MEASURED_SERVICES = 10  # passes timed per size and round: the first services of the namespace
REPEATS = 20  # rounds over every size
NAMESPACE = "payments"
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


class StandInApi:
    """The writes a pass may make, kept in the cache as the watch would deliver them, and counted."""

    def __init__(self, cache: ObjectCache) -> None:
        self.cache = cache
        self.writes = 0
        self._versions = count(1000)

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        live = _stored(manifest, version=next(self._versions))
        self.cache.put(live["kind"], live)
        self.writes += 1
        return live

    def patch_status(self, *, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(self.cache.get(PAYMENT_SERVICES.kind, namespace=namespace, name=name) or {})
        body["status"] = {**(body.get("status") or {}), **status}
        body["metadata"]["resourceVersion"] = str(next(self._versions))
        self.cache.put(PAYMENT_SERVICES.kind, body)
        self.writes += 1
        return body

    def post_event(self, **_: Any) -> None:
        self.writes += 1

    def remove_fields(self, **_: Any) -> None:
        raise AssertionError("a settled pass removes no fields")

    def json_patch(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("a settled pass patches nothing")

    def delete(self, **_: Any) -> None:
        raise AssertionError("a settled pass deletes nothing")

    def read_certificate_requests(self, **_: Any) -> list[dict[str, Any]]:
        raise AssertionError("a settled pass reads nothing from the API server")

    def read_child(self, **_: Any) -> dict[str, Any] | None:
        raise AssertionError("a settled pass finds no drift")


def _stored(body: Mapping[str, Any], *, version: int) -> dict[str, Any]:
    """`body` as the API server stores it."""
    live = copy.deepcopy(dict(body))
    metadata = live["metadata"]
    metadata.setdefault("uid", f"uid-{live['kind']}-{metadata.get('namespace', '')}-{metadata['name']}")
    metadata.setdefault("creationTimestamp", "2026-12-01T10:00:00Z")
    metadata["resourceVersion"] = str(version)
    return live


def namespace_of(size: int) -> tuple[ObjectCache, StandInApi, list[dict[str, Any]]]:
    """A cache holding `size` checkout copies in one namespace, with their pods, Services and accounts."""
    cache = ObjectCache()
    api = StandInApi(cache)
    versions = count(1)
    put = lambda body: cache.put(body["kind"], _stored(body, version=next(versions)))  # noqa: E731
    put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": _INJECTED}})
    put(_peer_authentication("istio-system", "default", selector=None))
    put(_ISSUER)
    template = checkout_template()
    services = []
    for index in range(size):
        manifest = checkout_copy(template, name=f"checkout-{index:03d}", namespace=NAMESPACE)
        manifest["metadata"].update(generation=1, finalizers=[FINALIZER])
        for workload in manifest["spec"]["workloads"]:
            name = f"{manifest['metadata']['name']}-{workload['name']}"
            put(_pod(name, workload))
            put(_service(name, workload))
            put({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(workload["serviceAccount"])})
        if index % 10 == 0:  # someone else's policies: one allow-all per ten services
            selector = manifest["spec"]["workloads"][0]["selector"]
            put(_network_policy(f"team-{index:03d}-allow-all", selector=selector))
        services.append(put(manifest))
    return cache, api, services


def settle(context: PassContext, services: list[dict[str, Any]], api: StandInApi) -> None:
    """Passes until one round writes nothing: the fleet as rendered, statuses written."""
    for _ in range(4):
        before = api.writes
        for body in services:
            reconcile(_latest(context.cache, body), context)
        if api.writes == before:
            return
    raise AssertionError("the namespace never settled")


@dataclass
class Namespace:
    """One settled namespace of `size` services, and its measured pass times."""

    size: int
    cache: ObjectCache
    api: StandInApi
    context: PassContext
    bodies: list[dict[str, Any]]
    writes_before: int
    seconds: list[float] = field(default_factory=list)


def settled(size: int) -> Namespace:
    cache, api, services = namespace_of(size)
    context = PassContext(
        cluster=api,
        cache=cache,
        platform=Platform(),
        mesh_root_namespace="istio-system",
        mesh_config_name="istio",
        audit_only=False,
        drift_history=DriftHistory(window=timedelta(seconds=300)),
        clock=lambda: NOW,
    )
    settle(context, services, api)
    bodies = [_latest(cache, body) for body in services[:MEASURED_SERVICES]]
    return Namespace(size, cache, api, context, bodies, writes_before=api.writes)


def measure(namespaces: list[Namespace]) -> list[dict[str, Any]]:
    """Rounds over every size in turn, so a busy moment of a shared machine is spread over all of them."""
    for _ in range(REPEATS):
        for namespace in namespaces:
            for body in namespace.bodies:
                started = time.perf_counter()
                reconcile(body, namespace.context)
                namespace.seconds.append(time.perf_counter() - started)
    rows = []
    for namespace in namespaces:
        seconds = sorted(namespace.seconds)
        rows.append(
            {
                "payment_services_in_namespace": namespace.size,
                "cached_objects": sum(namespace.cache.count(kind) for kind in _KINDS),
                "passes": len(seconds),
                "pass_ms_p50": round(statistics.median(seconds) * 1000, 3),
                "pass_ms_p90": round(seconds[int(len(seconds) * 0.9)] * 1000, 3),
                "writes_in_measured_passes": namespace.api.writes - namespace.writes_before,
            }
        )
    return rows


def main(argv: list[str]) -> int:
    logging.disable(logging.WARNING)  # every pass tells of its pending certificates
    sizes = tuple(int(a) for a in argv) or SIZES
    load_before = os.getloadavg()
    rows = measure([settled(size) for size in sizes])
    for row in rows:
        print(json.dumps(row))
    first, last = rows[0]["pass_ms_p50"], rows[-1]["pass_ms_p50"]
    result = {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_operator_changes_not_measured": bool(_git("status", "--porcelain", "--", "operator")),
        "python": sys.version.split()[0],
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "what": __doc__.split("\n\n")[0].replace("\n", " ") if __doc__ else "",
        "rows": rows,
        f"p50_ratio_{sizes[-1]}_to_{sizes[0]}": round(last / first, 2),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"p50 {sizes[-1]} / {sizes[0]} services: {last / first:.2f}x; written to {RESULTS}")
    return 0


_INJECTED = {"istio-injection": "enabled"}
_ISSUER = {
    "apiVersion": "cert-manager.io/v1",
    "kind": "ClusterIssuer",
    "metadata": {"name": "payments-ca"},
    "spec": {"ca": {"secretName": "payments-ca"}},
    "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KeyPairVerified"}]},
}
_KINDS = (
    "PaymentService",
    "PeerAuthentication",
    "AuthorizationPolicy",
    "NetworkPolicy",
    "Certificate",
    "Pod",
    "Service",
    "ServiceAccount",
)


def _latest(cache: ObjectCache, body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = body["metadata"]
    latest = cache.get(PAYMENT_SERVICES.kind, namespace=metadata["namespace"], name=metadata["name"])
    assert latest is not None
    return latest


def _meta(name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {"name": name, "namespace": namespace}


def _pod(name: str, workload: Mapping[str, Any]) -> dict[str, Any]:
    containers = [
        {"name": "app", "ports": [{"name": "https", "containerPort": 8443}]},
        {"name": "istio-proxy"},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**_meta(f"{name}-0"), "labels": dict(workload["selector"])},
        "spec": {"serviceAccountName": workload["serviceAccount"], "containers": containers},
        "status": {"phase": "Running"},
    }


def _service(name: str, workload: Mapping[str, Any]) -> dict[str, Any]:
    ports = [
        {"name": p["name"], "port": p["port"], "targetPort": p["port"], "appProtocol": "http"}
        for p in workload["ports"]
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name),
        "spec": {"selector": dict(workload["selector"]), "ports": ports},
    }


def _network_policy(name: str, *, selector: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name),
        "spec": {"podSelector": {"matchLabels": dict(selector)}, "ingress": [{}]},
    }


def _peer_authentication(namespace: str, name: str, *, selector: Mapping[str, str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"mtls": {"mode": "STRICT"}}
    if selector:
        spec["selector"] = {"matchLabels": dict(selector)}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": _meta(name, namespace),
        "spec": spec,
    }


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return done.stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
