"""The chart as an installer meets it on a real API server: `helm install --dry-run=server` passes the
version check and prints NOTES that say how to check the operator; a bad value fails on the schema, by
name; and `kubectl explain` shows the PaymentService CRD's descriptions as the server publishes them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from chart_tools import CHART, run_helm
from kube import TestCluster

# Not `payguard`: the suite's operator runs under a ClusterRole of that name, created outside Helm.
RELEASE = "payguard-dry-run"


def helm_install_dry_run(
    cluster: TestCluster, namespace: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_helm(
        "install", RELEASE, str(CHART), "--dry-run=server", "--namespace", namespace,
        "--kubeconfig", str(cluster.kubeconfig), *args,
    )  # fmt: skip


def test_install_dry_run_renders_notes_that_say_how_to_check_the_operator(
    cluster: TestCluster, namespace: str
) -> None:
    result = helm_install_dry_run(cluster, namespace)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"installed as release {RELEASE} in namespace {namespace}" in notes
    assert f"kubectl -n {namespace} get pods -l app.kubernetes.io/instance={RELEASE}" in notes
    assert "kubectl get paysvc -A" in notes
    assert "/metrics" in notes and "README" in notes
    assert "Watching: every namespace" in notes


def test_install_dry_run_refuses_a_bad_value_by_name(cluster: TestCluster, namespace: str) -> None:
    result = helm_install_dry_run(cluster, namespace, "--set", "operator.workers=lots")
    assert result.returncode != 0
    assert "at '/operator/workers': got string, want integer" in result.stderr, result.stderr


def kubectl(cluster: TestCluster, *args: str) -> str:
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def published_nodes(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from published_nodes(child, f"{path}.{key}")
    if "items" in node:
        yield from published_nodes(node["items"], f"{path}[]")


def test_the_api_server_publishes_a_description_for_every_field(cluster: TestCluster) -> None:
    document = json.loads(kubectl(cluster, "get", "--raw", "/openapi/v3/apis/payguard.dev/v1alpha1"))
    [schema] = [
        s
        for s in document["components"]["schemas"].values()
        if {"group": "payguard.dev", "version": "v1alpha1", "kind": "PaymentService"}
        in s.get("x-kubernetes-group-version-kind", [])
    ]
    nodes = [n for part in ("spec", "status") for n in published_nodes(schema["properties"][part], part)]
    assert len(nodes) > 80
    missing = [path for path, node in nodes if not node.get("description")]
    assert not missing, missing
    for top in ("apiVersion", "kind", "metadata"):  # the server fills in the standard ones
        assert schema["properties"][top].get("description"), top


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("paymentservice.spec.workloads.callers.principal", "serviceAccount"),
        ("paymentservice.spec.workloads.callers.principal.serviceAccount", '"default" is refused'),
        ("paymentservice.spec.workloads.ports.port", "15000-15090 are refused"),
        ("paymentservice.spec.certificates.issuerRef.kind", "ClusterIssuer"),
        ("paymentservice.status.conditions.reason", "CamelCase"),
    ],
)
def test_kubectl_explain_shows_descriptions(cluster: TestCluster, field: str, expected: str) -> None:
    text = kubectl(cluster, "explain", field)
    assert "<no description>" not in text, text
    assert expected in " ".join(text.split()), text
