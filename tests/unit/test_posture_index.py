"""The cache's indexes narrow what a pass reads, never what it finds: judging the snapshot `observe` builds
through them gives exactly the findings of judging every object of the namespace, as the scan did."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from pass_world import REPO
from payguard.cache import ObjectCache
from payguard.judge import judge
from payguard.kinds import CHILD_TYPES, PAYMENT_SERVICES, SERVICE_LABEL, WORKLOAD_LABEL
from payguard.model import InvalidSpec, PaymentService
from payguard.observe import observe
from payguard.posture.mesh import mesh_posture
from payguard.posture.mtls import effective_mtls
from payguard.posture.privilege import least_privilege_findings
from payguard.render import render_children
from payguard.settings import Platform
from payguard.snapshot import MESH_WIDE_KINDS, Snapshot
from payguard.spec import parse_payment_service

NS, ROOT = "payments", "istio-system"
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
Body = dict[str, Any]


def checkout(name: str = "checkout", **workload_changes: Any) -> Body:
    body: Body = yaml.safe_load((REPO / "examples" / "checkout.yaml").read_text())
    body["metadata"] = {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": "1"}
    for workload in body["spec"]["workloads"]:
        workload["selector"]["app.kubernetes.io/part-of"] = name
        workload["serviceAccount"] = f"{name}-{workload['serviceAccount']}"
        workload.update(copy.deepcopy(workload_changes))
    return body


def meta(name: str, namespace: str = NS, **more: Any) -> Body:
    return {"name": name, "namespace": namespace, "resourceVersion": "1", "uid": f"u-{name}", **more}


def network_policy(name: str, pod_selector: object, namespace: str = NS, **spec: Any) -> Body:
    spec = {"ingress": [{}], **spec}
    if pod_selector is not ...:
        spec["podSelector"] = pod_selector
    return {"kind": "NetworkPolicy", "metadata": meta(name, namespace), "spec": spec}


def istio(kind: str, name: str, selector: object = ..., namespace: str = NS, **spec: Any) -> Body:
    if selector is not ...:
        spec["selector"] = selector
    created = spec.pop("created", "2026-01-01T00:00:00Z")
    annotations = spec.pop("annotations", {})
    metadata = meta(name, namespace, creationTimestamp=created, annotations=annotations)
    return {"kind": kind, "metadata": metadata, "spec": spec}


def pod(name: str, labels: Mapping[str, Any], account: str, namespace: str = NS) -> Body:
    return {
        "kind": "Pod",
        "metadata": meta(name, namespace, labels=dict(labels)),
        "spec": {"serviceAccountName": account, "containers": [{"name": "istio-proxy"}]},
        "status": {"phase": "Running"},
    }


GW = {"app.kubernetes.io/name": "api-gateway", "app.kubernetes.io/part-of": "checkout"}
ORDER = {"app.kubernetes.io/name": "order-service", "app.kubernetes.io/part-of": "checkout"}
OTHER = {"app.kubernetes.io/name": "api-gateway", "app.kubernetes.io/part-of": "other"}
ALLOW_ALL = [{}]

# (case, objects beside the checkout PaymentService)
CASES: list[tuple[str, list[Body]]] = [
    ("podSelector {} selects every pod", [network_policy("all", {})]),
    ("no podSelector at all", [network_policy("none", ...)]),
    (
        "matchLabels a subset of the workload's",
        [network_policy("sub", {"matchLabels": {"app.kubernetes.io/part-of": "checkout"}})],
    ),
    ("matchLabels exactly the workload's", [network_policy("exact", {"matchLabels": GW})]),
    ("matchLabels with one label more", [network_policy("more", {"matchLabels": {**GW, "tier": "x"}})]),
    ("another service's labels", [network_policy("other", {"matchLabels": OTHER})]),
    (
        "a label value that is no string",
        [network_policy("int", {"matchLabels": {"app.kubernetes.io/name": 7}})],
    ),
    ("matchLabels that is no mapping", [network_policy("list", {"matchLabels": ["a"]})]),
    ("a selector that is no mapping", [network_policy("str", "everything")]),
    (
        "matchExpressions only: In, NotIn, Exists, DoesNotExist",
        [
            network_policy(
                "in",
                {
                    "matchExpressions": [
                        {"key": "app.kubernetes.io/name", "operator": "In", "values": ["api-gateway"]}
                    ]
                },
            ),
            network_policy(
                "notin",
                {
                    "matchExpressions": [
                        {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["api-gateway"]}
                    ]
                },
            ),
            network_policy(
                "exists", {"matchExpressions": [{"key": "app.kubernetes.io/part-of", "operator": "Exists"}]}
            ),
            network_policy("absent", {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
        ],
    ),
    (
        "matchLabels and matchExpressions together",
        [
            network_policy(
                "both", {"matchLabels": GW, "matchExpressions": [{"key": "tier", "operator": "Exists"}]}
            )
        ],
    ),
    ("a policy in another namespace", [network_policy("elsewhere", {}, namespace="other")]),
    (
        "a policy being deleted",
        [
            {
                **network_policy("going", {}),
                "metadata": meta("going", deletionTimestamp="2026-12-01T00:00:00Z"),
            }
        ],
    ),
    (
        "AuthorizationPolicies: namespace-wide, by selector, dry-run, DENY, targetRefs, mesh-wide",
        [
            istio("AuthorizationPolicy", "ns-wide", rules=ALLOW_ALL),
            istio("AuthorizationPolicy", "gw", {"matchLabels": GW}, rules=ALLOW_ALL),
            istio(
                "AuthorizationPolicy",
                "sub",
                {"matchLabels": {"app.kubernetes.io/name": "order-service"}},
                rules=[{"from": [{}]}],
            ),
            istio(
                "AuthorizationPolicy",
                "dry",
                {"matchLabels": GW},
                rules=ALLOW_ALL,
                annotations={"istio.io/dry-run": "true"},
            ),
            istio("AuthorizationPolicy", "deny", {"matchLabels": GW}, rules=ALLOW_ALL, action="DENY"),
            istio(
                "AuthorizationPolicy",
                "gateway",
                targetRefs=[{"kind": "Gateway", "name": "g"}],
                rules=ALLOW_ALL,
            ),
            istio("AuthorizationPolicy", "root-all", namespace=ROOT, rules=ALLOW_ALL),
            istio("AuthorizationPolicy", "root-gw", {"matchLabels": GW}, namespace=ROOT, rules=ALLOW_ALL),
            istio(
                "AuthorizationPolicy", "root-other", {"matchLabels": OTHER}, namespace=ROOT, rules=ALLOW_ALL
            ),
            istio("AuthorizationPolicy", "empty-labels", {"matchLabels": {}}, rules=ALLOW_ALL),
        ],
    ),
    (
        "PeerAuthentications: mesh, namespace, an older and a newer workload policy, port levels",
        [
            istio("PeerAuthentication", "default", namespace=ROOT, mtls={"mode": "STRICT"}),
            istio(
                "PeerAuthentication", "root-gw", {"matchLabels": GW}, namespace=ROOT, mtls={"mode": "DISABLE"}
            ),
            istio("PeerAuthentication", "ns", mtls={"mode": "PERMISSIVE"}),
            istio(
                "PeerAuthentication",
                "old",
                {"matchLabels": GW},
                mtls={"mode": "STRICT"},
                created="2025-01-01T00:00:00Z",
            ),
            istio("PeerAuthentication", "new", {"matchLabels": GW}, mtls={"mode": "DISABLE"}),
            istio(
                "PeerAuthentication",
                "ports",
                {"matchLabels": ORDER},
                portLevelMtls={"9090": {"mode": "PERMISSIVE"}},
            ),
            istio("PeerAuthentication", "foreign", {"matchLabels": OTHER}, mtls={"mode": "DISABLE"}),
        ],
    ),
    (
        "pods: matched, unmatched, outside the mesh, under another account, a label that is no string",
        [
            pod("gw-0", {**GW, "pod-template-hash": "abc"}, "checkout-api-gateway"),
            pod("gw-1", GW, "someone-else"),
            {
                **pod("order-0", ORDER, "checkout-order-service"),
                "spec": {"serviceAccountName": "checkout-order-service"},
            },
            pod("other-0", OTHER, "other-api-gateway"),
            pod("odd-0", {"app.kubernetes.io/name": 1}, "x"),
            pod("gw-elsewhere", GW, "x", namespace="other"),
            {
                "kind": "Service",
                "metadata": meta("gw"),
                "spec": {
                    "selector": {"app.kubernetes.io/name": "api-gateway"},
                    "ports": [{"name": "tcp-x", "port": 8443}],
                },
            },
            {
                "kind": "Service",
                "metadata": meta("none"),
                "spec": {"selector": {}, "ports": [{"name": "tcp", "port": 8443}]},
            },
            {
                "kind": "Service",
                "metadata": meta("other"),
                "spec": {"selector": OTHER, "ports": [{"name": "tcp", "port": 8443}]},
            },
            {"kind": "ServiceAccount", "metadata": meta("checkout-api-gateway")},
            {"kind": "ServiceAccount", "metadata": meta("unrelated")},
        ],
    ),
    (
        "neighbours: one shares a ServiceAccount, one does not, a broken one shares too",
        [
            {"kind": "PaymentService", **checkout("sharer")},
            {"kind": "PaymentService", **checkout("apart")},
            {"kind": "PaymentService", **checkout("broken")},
        ],
    ),
]


def _sharing_neighbours(objects: list[Body]) -> list[Body]:
    for body in objects:
        if body["metadata"]["name"] == "sharer":
            body["spec"]["workloads"][0]["serviceAccount"] = "checkout-api-gateway"
        if body["metadata"]["name"] == "broken":
            body["spec"]["workloads"][1]["serviceAccount"] = "checkout-order-service"
            body["spec"]["pciScope"] = "nonsense"
    return objects


def scanned_snapshot(service: PaymentService, cache: ObjectCache) -> Snapshot:
    """What observe read before the indexes: every object of the namespace (and the root's policies)."""
    narrowed = observe(service, cache, mesh_root_namespace=ROOT, mesh_config_name="istio")
    objects = {
        (kind, NS, obj["metadata"]["name"]): obj
        for kind in CHILD_TYPES
        for obj in cache.list(kind, namespaces=[NS])
    }
    others = []
    for body in cache.list(PAYMENT_SERVICES.kind, namespaces=[NS]):
        if body["metadata"]["uid"] != service.uid:
            with contextlib.suppress(InvalidSpec):  # a broken one claims nothing
                others.append(parse_payment_service(body))
    return Snapshot(
        namespace_objects=MappingProxyType(objects),
        mesh_root_objects=MappingProxyType(
            {k: tuple(cache.list(k, namespaces=[ROOT])) for k in MESH_WIDE_KINDS}
        ),
        other_services=tuple(others),
        issuer=narrowed.issuer,
        certificate_requests=tuple(cache.list("CertificateRequest", namespaces=[NS])),
        pods=tuple(cache.list("Pod", namespaces=[NS])),
        service_accounts=frozenset(
            a["metadata"]["name"] for a in cache.list("ServiceAccount", namespaces=[NS])
        ),
        services=tuple(cache.list("Service", namespaces=[NS])),
        namespace=narrowed.namespace,
        mesh_config=narrowed.mesh_config,
        unobserved=narrowed.unobserved,
    )


def findings(service: PaymentService, body: Body, snapshot: Snapshot) -> dict[str, Any]:
    verdict = judge(
        service, body, snapshot, [], mesh_root_namespace=ROOT, mesh_config_name="istio", fights=[], now=NOW
    )
    return {
        "mtls": effective_mtls(service, snapshot.of_kind("PeerAuthentication"), mesh_root_namespace=ROOT),
        "privilege": least_privilege_findings(
            service,
            network_policies=snapshot.of_kind("NetworkPolicy"),
            authorization_policies=snapshot.of_kind("AuthorizationPolicy"),
            other_services=snapshot.other_services,
            mesh_root_namespace=ROOT,
        ),
        "mesh": mesh_posture(
            service,
            pods=snapshot.pods,
            namespace=snapshot.namespace,
            service_accounts=snapshot.service_accounts,
            services=snapshot.services,
        ),
        "conditions": verdict.conditions,
        "summaries": verdict.summaries,
    }


def cache_with(objects: list[Body], service_body: Body) -> ObjectCache:
    cache = ObjectCache()
    cache.put(
        "Namespace", {"kind": "Namespace", "metadata": {"name": NS, "labels": {"istio-injection": "enabled"}}}
    )
    cache.put("PaymentService", service_body)
    for obj in objects:
        cache.put(obj["kind"], obj)
    return cache


@pytest.mark.parametrize(("case", "objects"), CASES, ids=[case for case, _ in CASES])
def test_the_indexed_snapshot_finds_what_the_scan_found(case: str, objects: list[Body]) -> None:
    body = checkout()
    service = parse_payment_service(body)
    cache = cache_with(_sharing_neighbours(copy.deepcopy(objects)), body)

    indexed = findings(
        service, body, observe(service, cache, mesh_root_namespace=ROOT, mesh_config_name="istio")
    )
    scanned = findings(service, body, scanned_snapshot(service, cache))

    assert indexed == scanned, case


def test_every_case_finds_something_so_the_comparison_can_fail() -> None:
    """Each case (bar the ones that must find nothing) differs from an empty namespace's findings."""
    body = checkout()
    service = parse_payment_service(body)
    empty = findings(service, body, scanned_snapshot(service, cache_with([], body)))
    quiet = {
        "matchLabels with one label more",
        "another service's labels",
        "a label value that is no string",
        "a policy in another namespace",
        "a policy being deleted",
        "matchLabels and matchExpressions together",  # tier Exists: the workload's pods carry no tier
    }
    for case, objects in CASES:
        found = findings(
            service,
            body,
            scanned_snapshot(service, cache_with(_sharing_neighbours(copy.deepcopy(objects)), body)),
        )
        assert (found == empty) == (case in quiet), case


def test_the_index_follows_changes_removals_and_fresh_lists() -> None:
    body = checkout()
    service = parse_payment_service(body)
    cache = cache_with([network_policy("moving", {"matchLabels": OTHER})], body)

    def same() -> None:
        indexed = observe(service, cache, mesh_root_namespace=ROOT, mesh_config_name="istio")
        assert findings(service, body, indexed) == findings(service, body, scanned_snapshot(service, cache))

    cache.put("NetworkPolicy", network_policy("moving", {"matchLabels": GW}))  # now selects the gateway
    same()
    assert any(
        "moving" in str(f) for f in findings(service, body, scanned_snapshot(service, cache))["privilege"]
    )
    cache.remove("NetworkPolicy", namespace=NS, name="moving")
    same()
    cache.replace("NetworkPolicy", [network_policy("listed", {"matchLabels": ORDER})], namespace=NS)
    same()
    assert any(
        "listed" in str(f) for f in findings(service, body, scanned_snapshot(service, cache))["privilege"]
    )
    cache.replace("NetworkPolicy", [])
    same()


@pytest.mark.parametrize("stem", sorted(p.stem for p in (REPO / "examples").glob("*.yaml")))
def test_every_rendered_child_has_the_name_observe_reads_it_by(stem: str) -> None:
    """observe finds a pass's children (and a foreign object in their way) by `child_name` and by the
    PaymentService label; a child named otherwise would be seen as missing."""
    documents = [d for d in yaml.safe_load_all((REPO / "examples" / f"{stem}.yaml").read_text()) if d]
    for body in documents:
        if body.get("kind") != "PaymentService":
            continue
        body["metadata"].setdefault("namespace", NS)
        service = parse_payment_service(body)
        for manifest in render_children(service, platform=Platform()):
            workload = manifest["metadata"]["labels"][WORKLOAD_LABEL]
            assert manifest["kind"] in CHILD_TYPES
            assert manifest["metadata"]["name"] == service.child_name(workload), manifest["metadata"]
            assert manifest["metadata"]["labels"][SERVICE_LABEL] == service.name
