"""Pods as API objects, as the Istio injector leaves them: what a PaymentService's workloads need for
payguard to observe them in the mesh (there is no kubelet and no injector in the test control planes)."""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

INJECTED_LABELS = {"istio-injection": "enabled"}
SIDECAR_STATUS = '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"]}'


def namespace_manifest(name: str, labels: Mapping[str, str] = INJECTED_LABELS) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels)}}


def service_account_manifest(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}


def pod_manifest(
    namespace: str,
    name: str,
    *,
    labels: Mapping[str, str],
    service_account: str,
    sidecar: bool = True,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A pod as the API server stores it after injection (`sidecar=True`) or without it."""
    containers: list[dict[str, Any]] = [{"name": "app", "image": "app:1"}]
    marks = dict(annotations or {})
    if sidecar:
        containers.append({"name": "istio-proxy", "image": "proxyv2:1"})
        marks["sidecar.istio.io/status"] = SIDECAR_STATUS
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels), "annotations": marks},
        "spec": {"serviceAccountName": service_account, "containers": containers},
    }


def workload_pods(
    service: Mapping[str, Any], *, sidecar: bool = True, annotations: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One pod per workload of a PaymentService manifest, under its declared ServiceAccount."""
    namespace = service["metadata"]["namespace"]
    return [
        pod_manifest(
            namespace,
            f"{service['metadata']['name']}-{workload['name']}-0",
            labels=workload["selector"],
            service_account=workload["serviceAccount"],
            sidecar=sidecar,
            annotations=annotations,
        )
        for workload in service["spec"]["workloads"]
    ]


def enrolment(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Everything a PaymentService's workloads need to be observed in the mesh: its ServiceAccounts, then
    one injected pod per workload (the namespace's injection label is set apart: it already exists)."""
    namespace = service["metadata"]["namespace"]
    accounts = sorted({w["serviceAccount"] for w in service["spec"]["workloads"]})
    return [
        *(service_account_manifest(namespace, name) for name in accounts),
        *(copy.deepcopy(pod) for pod in workload_pods(service)),
    ]


AMBIENT_LABELS = {"istio.io/dataplane-mode": "ambient"}
AMBIENT_CAPTURED = {"ambient.istio.io/redirection": "enabled"}  # what istio-cni marks a captured pod with


def ambient_pods(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One pod per workload as it runs in ambient mode: no sidecar, captured by istio-cni."""
    return workload_pods(service, sidecar=False, annotations=AMBIENT_CAPTURED)


def ambient_enrolment(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Like `enrolment`, for a namespace in ambient mode (labelled apart): ServiceAccounts, captured pods."""
    namespace = service["metadata"]["namespace"]
    accounts = sorted({w["serviceAccount"] for w in service["spec"]["workloads"]})
    return [*(service_account_manifest(namespace, name) for name in accounts), *ambient_pods(service)]


def main(argv: list[str]) -> None:
    """`python tests/mesh_pods.py FILE`: prints, for every PaymentService in FILE, its namespace labelled
    for injection, its ServiceAccounts and one injected pod per workload (`make demo` pipes it to kubectl
    on the local control plane, which has no kubelet and no injector)."""
    documents = [
        d for d in yaml.safe_load_all(Path(argv[0]).read_text()) if d and d.get("kind") == "PaymentService"
    ]
    manifests = []
    for service in documents:
        manifests += [namespace_manifest(service["metadata"]["namespace"]), *enrolment(service)]
    print(yaml.safe_dump_all(manifests, sort_keys=False), end="")


if __name__ == "__main__":
    main(sys.argv[1:])
