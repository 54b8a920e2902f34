"""Owns what the local control plane is made from: the pinned versions, the cached binaries and the CRDs.

pinned_versions()   hack/versions.env, the one place versions are pinned
build_binaries()    etcd, kube-apiserver and kube-controller-manager, built once and cached
install_crds(path)  the upstream Istio, cert-manager and monitoring CRDs plus payguard's own
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from kubernetes import config, dynamic

HACK_DIR = Path(__file__).resolve().parent
REPO_DIR = HACK_DIR.parent
PAYGUARD_CRDS_DIR = REPO_DIR / "crds"
READY_TIMEOUT_SECONDS = 120.0


def log(message: str) -> None:
    print(f"localcluster: {message}", file=sys.stderr, flush=True)


def pinned_versions() -> dict[str, str]:
    """Reads hack/versions.env, the one place versions are pinned."""
    versions = {}
    for raw_line in (HACK_DIR / "versions.env").read_text().splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def build_binaries() -> Path:
    """Builds (or finds cached) etcd, kube-apiserver and kube-controller-manager; returns their directory."""
    result = subprocess.run(
        ["bash", str(HACK_DIR / "build-binaries.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def go_module_dir(module: str, version: str) -> Path:
    """Downloads a pinned Go module (the proxy is our only source of upstream files) and returns its dir."""
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=HACK_DIR,
    )
    return Path(json.loads(result.stdout)["Dir"])


def upstream_crd_files() -> list[Path]:
    """The pinned Istio and cert-manager CRD files, straight from their Go modules."""
    versions = pinned_versions()
    istio = go_module_dir("istio.io/api", versions["ISTIO_API_VERSION"])
    cert_manager = go_module_dir("github.com/cert-manager/cert-manager", versions["CERT_MANAGER_VERSION"])
    # ServiceMonitor and PrometheusRule, so the chart's optional monitoring objects are validated too.
    monitoring = go_module_dir(
        "github.com/prometheus-operator/prometheus-operator", versions["PROMETHEUS_OPERATOR_VERSION"]
    )
    monitoring_crds = monitoring / "example" / "prometheus-operator-crd"
    return [
        istio / "kubernetes" / "customresourcedefinitions.gen.yaml",
        *sorted((cert_manager / "deploy" / "crds").glob("*.yaml")),
        monitoring_crds / "monitoring.coreos.com_servicemonitors.yaml",
        monitoring_crds / "monitoring.coreos.com_prometheusrules.yaml",
    ]


def payguard_crd_files() -> list[Path]:
    return sorted(PAYGUARD_CRDS_DIR.glob("*.yaml"))


def install_crds(kubeconfig: Path) -> None:
    """Applies the upstream Istio and cert-manager CRDs and payguard's own, server-side, and waits."""
    documents = [
        doc
        for path in [*upstream_crd_files(), *payguard_crd_files()]
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]
    client = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        crds = dynamic.DynamicClient(client).resources.get(
            api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
        )
        for doc in documents:
            # Server-side: two upstream CRDs exceed the client-side apply annotation limit.
            crds.server_side_apply(
                body=doc,
                name=doc["metadata"]["name"],
                field_manager="payguard-hack",
                force_conflicts=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        pending = {doc["metadata"]["name"] for doc in documents}
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                conditions = crds.get(name=name).to_dict().get("status", {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    pending.discard(name)
            time.sleep(0.2 if pending else 0)
        if pending:
            raise TimeoutError(f"CRDs not established: {sorted(pending)}")
    finally:
        client.close()
    log(f"installed {len(documents)} CRDs")
