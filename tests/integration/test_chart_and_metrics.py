"""The chart's manifests are accepted by the real API server (server-side dry-run), and the operator's
metrics endpoint serves every documented series that the chart's alerts use."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from test_reconcile import apply_and_wait_ready, checkout, patch_child, wait_condition

from chart_tools import ALL_OPTIONS, NAMESPACE, only, render
from kube import TestCluster
from operator_harness import ensure_namespace
from payguard.settings import RunSettings


@pytest.mark.parametrize("values", [None, ALL_OPTIONS], ids=["default-values", "all-options"])
def test_rendered_chart_is_accepted_by_the_api_server(cluster: TestCluster, values: Path | None) -> None:
    ensure_namespace(cluster, NAMESPACE)
    documents = render(values)
    for document in documents:
        # The mesh config Role lives in the mesh root namespace; everything else namespaced in the release's.
        namespace = document["metadata"].get("namespace") or NAMESPACE
        if document["kind"] in CLUSTER_SCOPED:
            namespace = None
        else:
            ensure_namespace(cluster, namespace)
        cluster.apply(document, namespace=namespace, dry_run=True)
    assert {"Deployment", "ClusterRole", "NetworkPolicy", "CustomResourceDefinition"} <= {
        d["kind"] for d in documents
    }


CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
DOCUMENTED_SERIES = {
    "payguard_reconciles_total",
    "payguard_reconcile_duration_seconds_bucket",
    "payguard_api_writes_total",
    "payguard_drift_detected_total",
    "payguard_drift_reverted_total",
    "payguard_drift_repeated_total",
    "payguard_managed_objects",
    "payguard_condition",
    "payguard_active_exceptions",
    "payguard_certificates",
    "payguard_certificate_expiry_timestamp_seconds",
    "payguard_certificate_renewal_timestamp_seconds",
}
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "group_left",
    "group_right",
}
PROMETHEUS_OWN_SERIES = {"up"}  # written by Prometheus for every scrape target


def scrape(settings: RunSettings) -> dict[str, list[str]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    series: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            series.setdefault(name, []).append(line)
    return series


def metric_names(expression: str) -> set[str]:
    """Series names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expression)
    # Label lists of vector matching and aggregation: `on(namespace)`, `by (workload)`.
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped):
        follows = stripped[match.end() :].lstrip()[:1]
        if follows != "(" and match.group() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def test_metrics_endpoint_serves_every_documented_series(
    cluster: TestCluster, namespace: str, payguard_operator: RunSettings
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    patch_child(
        cluster,
        "PeerAuthentication",
        namespace,
        "checkout-api-gateway",
        {"spec": {"mtls": {"mode": "DISABLE"}}},
    )
    wait_condition(cluster, namespace, "InSync", status="True", reason="DriftReverted")

    series = scrape(payguard_operator)

    assert set(series) >= DOCUMENTED_SERIES, DOCUMENTED_SERIES - set(series)
    expiry = [
        line
        for line in series["payguard_certificate_expiry_timestamp_seconds"]
        if f'namespace="{namespace}"' in line
    ]
    assert len(expiry) == 4
    assert any(
        f'namespace="{namespace}"' in line and 'type="Ready"' in line and line.endswith(" 1.0")
        for line in series["payguard_condition"]
    )


def test_alert_expressions_reference_only_series_that_exist(
    cluster: TestCluster, namespace: str, payguard_operator: RunSettings
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    served = set(scrape(payguard_operator))
    rule = only(render(ALL_OPTIONS), "PrometheusRule")
    expressions = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]

    referenced = set().union(*(metric_names(expr) for expr in expressions))

    assert referenced, "no series found in the alert expressions: the parser is broken"
    assert referenced - PROMETHEUS_OWN_SERIES <= served, (referenced - PROMETHEUS_OWN_SERIES) - served


def test_metric_name_parser_sees_through_functions_labels_and_ranges() -> None:
    expr = 'increase(payguard_reconciles_total{result="error"}[10m]) > 0 and on(ns) absent(up{job="x"} == 1)'
    assert metric_names(expr) == {"payguard_reconciles_total", "up"}
