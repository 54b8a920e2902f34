"""The cache replaces a kind from a fresh list and reports every difference, vanished objects included."""

from __future__ import annotations

from typing import Any

from payguard.cache import ObjectCache


def obj(name: str, version: str, namespace: str = "payments") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": version, "managedFields": [{}]}
    }


def test_a_fresh_list_reports_added_changed_and_vanished_objects() -> None:
    cache = ObjectCache()
    cache.replace("NetworkPolicy", [obj("kept", "1"), obj("edited", "1"), obj("deleted", "1")])

    changes = cache.replace("NetworkPolicy", [obj("kept", "1"), obj("edited", "2"), obj("new", "3")])

    by_name = {c.body["metadata"]["name"]: c for c in changes}
    assert sorted(by_name) == ["deleted", "edited", "new"]
    assert by_name["deleted"].new is None and by_name["deleted"].old is not None
    assert by_name["new"].old is None
    edited = by_name["edited"]
    assert edited.old is not None and edited.new is not None
    assert edited.new["metadata"]["resourceVersion"] == "2"
    assert cache.get("NetworkPolicy", namespace="payments", name="deleted") is None
    # Slimming is the informer's, page by page (test_resync_check): the cache keeps what it is given.


def test_a_namespace_scoped_list_replaces_only_that_namespace() -> None:
    cache = ObjectCache()
    cache.replace("NetworkPolicy", [obj("a", "1", "one"), obj("b", "1", "two")])

    changes = cache.replace("NetworkPolicy", [], namespace="one")

    assert [c.body["metadata"]["name"] for c in changes] == ["a"]
    assert [o["metadata"]["name"] for o in cache.list("NetworkPolicy")] == ["b"]


def test_a_kind_marked_unavailable_is_reported_until_cleared() -> None:
    cache = ObjectCache()
    cache.set_unavailable("AuthorizationPolicy", "CRD not served")
    assert cache.unavailable() == {"AuthorizationPolicy": "CRD not served"}
    cache.set_unavailable("AuthorizationPolicy", None)
    assert cache.unavailable() == {}


def test_a_pod_is_cached_with_only_what_a_pass_reads() -> None:
    cache = ObjectCache()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "gw-0",
            "namespace": "payments",
            "uid": "u1",
            "resourceVersion": "7",
            "labels": {"app": "gw"},
            "annotations": {
                "sidecar.istio.io/status": "{}",
                "kubectl.kubernetes.io/last-applied": "x" * 5000,
            },
            "managedFields": [{"manager": "kubelet"}],
            "ownerReferences": [{"kind": "ReplicaSet"}],
        },
        "spec": {
            "serviceAccountName": "gw",
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "env": [{"name": "A"}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                }
            ],
            "initContainers": [{"name": "istio-proxy", "restartPolicy": "Always", "image": "proxy"}],
            "volumes": [{"name": "token"}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready"}], "podIP": "10.0.0.1"},
    }

    kept = cache.put("Pod", pod)

    assert kept == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "gw-0",
            "namespace": "payments",
            "uid": "u1",
            "resourceVersion": "7",
            "labels": {"app": "gw"},
            "annotations": {"sidecar.istio.io/status": "{}"},
        },
        "spec": {
            "serviceAccountName": "gw",
            "containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}],
            "initContainers": [{"name": "istio-proxy", "restartPolicy": "Always"}],
        },
        "status": {"phase": "Running"},
    }
    assert cache.get("Pod", namespace="payments", name="gw-0") == kept


def test_a_service_account_keeps_its_identity_only_and_a_service_its_selector_and_ports() -> None:
    cache = ObjectCache()
    account = {
        "kind": "ServiceAccount",
        "metadata": {"name": "gw", "namespace": "p", "uid": "u"},
        "secrets": [{"name": "t"}],
    }
    service = {
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "p"},
        "spec": {
            "selector": {"app": "gw"},
            "clusterIP": "10.0.0.9",
            "ports": [{"name": "tcp-db", "port": 5432, "targetPort": "db", "nodePort": 3}],
        },
    }

    assert "secrets" not in cache.put("ServiceAccount", account)
    assert cache.put("Service", service)["spec"] == {
        "selector": {"app": "gw"},
        "ports": [{"name": "tcp-db", "port": 5432, "targetPort": "db"}],
    }
