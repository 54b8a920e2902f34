"""What caching pods costs payguard: RSS of a fresh process before and after its cache holds N pods as a
kubelet and Istio's injector leave them (sidecar, init container, volumes, status, managedFields), and
the same with whole bodies, for comparison. Run: `.venv/bin/python -m bench.pod_cache [N]`; the result is
written to bench/results/pod-cache.json with the commit it measured."""

from __future__ import annotations

import copy
import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from payguard.cache import ObjectCache
from payguard.kinds import PODS

RESULTS = Path(__file__).resolve().parent / "results" / "pod-cache.json"


def realistic_pod(index: int) -> dict[str, Any]:
    """An injected Deployment pod as the API server returns it once running (about 9 KiB of JSON)."""
    name = f"order-service-7d9f8b6c5-{index:05d}"
    container_status = {
        "containerID": "containerd://" + "ab" * 32,
        "image": "registry.example/app:1.2.3",
        "imageID": "registry.example/app@sha256:" + "cd" * 32,
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "started": True,
        "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}},
    }
    env = [{"name": f"SETTING_{i}", "value": f"value-{i}"} for i in range(12)]
    mounts = [{"mountPath": f"/var/run/{i}", "name": f"volume-{i}", "readOnly": True} for i in range(6)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": f"payments-{index % 50}",
            "uid": f"00000000-0000-0000-0000-{index:012d}",
            "resourceVersion": str(100000 + index),
            "generateName": "order-service-7d9f8b6c5-",
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "labels": {
                "app.kubernetes.io/name": "order-service",
                "app.kubernetes.io/part-of": "checkout",
                "pod-template-hash": "7d9f8b6c5",
                "security.istio.io/tlsMode": "istio",
                "service.istio.io/canonical-name": "order-service",
                "service.istio.io/canonical-revision": "latest",
            },
            "annotations": {
                "sidecar.istio.io/status": json.dumps(
                    {"containers": ["istio-proxy"], "volumes": ["istio-envoy"]}
                ),
                "kubectl.kubernetes.io/default-container": "app",
                "prometheus.io/path": "/stats/prometheus",
                "prometheus.io/port": "15020",
                "istio.io/rev": "default",
            },
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name[:-6], "uid": "x"}
            ],
            "managedFields": [
                {
                    "manager": m,
                    "operation": "Update",
                    "fieldsV1": {"f:status": {f"f:{k}": {} for k in range(40)}},
                }
                for m in ("kube-controller-manager", "kubelet")
            ],
        },
        "spec": {
            "serviceAccountName": "order-service",
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example/app:1.2.3",
                    "env": env,
                    "volumeMounts": mounts,
                    "ports": [{"name": "https", "containerPort": 8443, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
                },
                {
                    "name": "istio-proxy",
                    "image": "proxyv2:1.28",
                    "args": ["proxy", "sidecar"] * 8,
                    "env": env,
                    "volumeMounts": mounts,
                    "ports": [{"name": "http-envoy-prom", "containerPort": 15090}],
                },
            ],
            "initContainers": [
                {"name": "istio-init", "image": "proxyv2:1.28", "args": ["istio-iptables"] * 10}
            ],
            "volumes": [
                {"name": f"volume-{i}", "projected": {"sources": [{"serviceAccountToken": {}}]}}
                for i in range(6)
            ],
            "nodeName": f"node-{index % 20}",
        },
        "status": {
            "phase": "Running",
            "podIP": f"10.{index % 250}.0.1",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": "2026-12-01T10:00:00Z"}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "containerStatuses": [container_status, container_status],
            "initContainerStatuses": [container_status],
        },
    }


def rss_kib() -> int:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def measure(count: int, *, whole: bool) -> dict[str, Any]:
    """In this process: RSS before and after caching `count` pods (slim, or whole for comparison)."""
    cache = ObjectCache()
    pods = [realistic_pod(i) for i in range(min(count, 64))]  # templates: bodies are rebuilt per pod
    before = rss_kib()
    kept: list[Any] = []
    for index in range(count):
        body = copy.deepcopy(pods[index % len(pods)])
        body["metadata"]["name"] = f"pod-{index}"
        if whole:
            kept.append(body)  # what a cache of whole bodies would hold
        else:
            cache.put(PODS.kind, body)
        del body
    after = rss_kib()
    return {
        "pods": count,
        "rss_kib_before": before,
        "rss_kib_after": after,
        "kib_per_pod": round((after - before) / count, 2),
        "pod_json_kib": round(len(json.dumps(realistic_pod(0))) / 1024, 2),
    }


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--child":
        print(json.dumps(measure(int(argv[1]), whole=argv[2] == "whole")))
        return
    count = int(argv[0]) if argv else 5000
    runs = {
        mode: json.loads(
            subprocess.run(
                [sys.executable, "-m", "bench.pod_cache", "--child", str(count), mode],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        for mode in ("slim", "whole")
    }
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    result = {"commit": commit, **runs}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
