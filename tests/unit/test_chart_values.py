"""The chart installs with no flags, refuses bad values by name, and its schema covers every value.

`values.schema.json` is enforced by helm itself on template, lint, install and upgrade; these tests use
the pinned helm (hack/build-helm.sh), so what they see is what an installer sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart_tools import ALL_OPTIONS, CHART, run_helm

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())


def test_plain_helm_template_renders() -> None:
    result = run_helm("template", str(CHART))
    assert result.returncode == 0, result.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc}
    assert {"Deployment", "ClusterRole", "NetworkPolicy", "ServiceAccount"} <= kinds


@pytest.mark.parametrize("version", ["v1.30.0", "v1.37.2"])
def test_supported_kubernetes_versions_render(version: str) -> None:
    result = run_helm("template", str(CHART), "--kube-version", version)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("version", ["v1.29.9", "v1.25.0"])
def test_kubernetes_before_1_30_is_refused_with_the_reason(version: str) -> None:
    result = run_helm("template", str(CHART), "--kube-version", version)
    assert result.returncode != 0
    assert "chart requires kubeVersion: >=1.30.0-0" in result.stderr
    assert version in result.stderr


@pytest.mark.parametrize(
    ("setting", "path", "complaint"),
    [
        ("operator.workers=lots", "/operator/workers", "want integer"),
        ("operator.wrokers=4", "/operator", "'wrokers' not allowed"),
        ("typo=1", "at ''", "'typo' not allowed"),
        ("operator.logLevel=TRACE", "/operator/logLevel", "must be one of"),
        ("operator.logFormat=xml", "/operator/logFormat", "must be one of"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy", "must be one of"),
        ("operator.workers=0", "/operator/workers", "minimum"),
        ("operator.burst=-1", "/operator/burst", "minimum"),
        ("operator.qps=-1", "/operator/qps", "minimum"),
        ("operator.burst=20", "/operator/burst", "value must be 0"),  # a burst without qps limits nothing
        ("operator.fightWindowSeconds=0", "/operator/fightWindowSeconds", "exclusiveMinimum"),
        ("replicas=2,leaderElection.enabled=false", "/replicas", "maximum"),
        ("leaderElection.shards=0", "/leaderElection/shards", "minimum"),
        ("leaderElection.leaseDuration=soon", "/leaderElection/leaseDuration", "want integer"),
        ("metrics.port=70000", "/metrics/port", "maximum"),
        ("livenessPort=0", "/livenessPort", "minimum"),
        ("operator.auditOnly=maybe", "/operator/auditOnly", "want boolean"),
        ("operator.watchNamespaces[0]=Payments", "/operator/watchNamespaces/0", "does not match pattern"),
        (
            "metrics.serviceMonitor.interval=soon",
            "/metrics/serviceMonitor/interval",
            "does not match pattern",
        ),
        (
            "metrics.prometheusRule.certificateExpiryWarningSeconds=0",
            "/certificateExpiryWarningSeconds",
            "minimum",
        ),
        ("networkPolicy.apiServer.ports[0]=0", "/networkPolicy/apiServer/ports/0", "minimum"),
        ("operator.platform.dns.ports[0].port=0", "/operator/platform/dns/ports/0/port", "minimum"),
        ("operator.platform.istiod.ports[0].port=70000", "/operator/platform/istiod/ports/0/port", "maximum"),
        (
            "operator.platform.meshCA.ports[0].protocol=ICMP",
            "/operator/platform/meshCA/ports/0/protocol",
            "must be one of",
        ),
        ("operator.platform.podCIDRs[0]=10.0.0.1", "/operator/platform/podCIDRs/0", "does not match pattern"),
        (
            "operator.platform.serviceCIDRs[0]=any",
            "/operator/platform/serviceCIDRs/0",
            "does not match pattern",
        ),
        (
            "operator.platform.istiod.destinations[0].namespace=Istio",
            "/operator/platform/istiod/destinations/0",
            "'oneOf' failed",
        ),
        (
            "operator.platform.dns.destinations=null",
            "/operator/platform/dns",
            "missing property 'destinations'",
        ),
        ("operator.platform.dns.destinations[0]=x", "/operator/platform/dns/destinations/0", "want object"),
        ("networkPolicy.dns.namespace=x", "/networkPolicy", "'dns' not allowed"),
    ],
)
def test_invalid_value_fails_naming_the_value(setting: str, path: str, complaint: str) -> None:
    result = run_helm("template", str(CHART), "--set", setting)
    assert result.returncode != 0, f"--set {setting} rendered"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert path in result.stderr and complaint in result.stderr, result.stderr


@pytest.mark.parametrize("values", [None, ALL_OPTIONS], ids=["default-values", "all-options"])
def test_known_value_sets_pass_the_schema(values: Path | None) -> None:
    result = run_helm("lint", "--strict", str(CHART), *(["--values", str(values)] if values else []))
    assert result.returncode == 0, result.stdout + result.stderr


def value_paths(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> set[str]:
    """Every key of a values document, descending where the schema declares named properties."""
    paths = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        paths.add(path)
        node = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and "properties" in node:
            paths |= value_paths(value, node, f"{path}.")
    return paths


def schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, node in schema.get("properties", {}).items():
        paths.add(f"{prefix}{key}")
        paths |= schema_paths(node, f"{prefix}{key}.")
    return paths


def test_schema_covers_every_value_and_nothing_else() -> None:
    in_values = value_paths(DEFAULTS, SCHEMA)
    in_schema = schema_paths(SCHEMA)
    assert not in_values - in_schema, f"values.yaml keys without a schema: {sorted(in_values - in_schema)}"
    assert not in_schema - in_values, f"schema properties not in values.yaml: {sorted(in_schema - in_values)}"
    all_options = value_paths(yaml.safe_load(ALL_OPTIONS.read_text()), SCHEMA)
    assert all_options <= in_schema, sorted(all_options - in_schema)


def object_nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path or "(root)", schema)] if "properties" in schema else []
    for key, node in schema.get("properties", {}).items():
        found += object_nodes(node, f"{path}.{key}")
    items = schema.get("items")
    if isinstance(items, dict):
        found += object_nodes(items, f"{path}[]")
    return found


def test_every_value_has_a_type_and_no_object_takes_unknown_keys() -> None:
    for path in sorted(schema_paths(SCHEMA)):
        node = SCHEMA
        for key in path.split("."):
            node = node["properties"][key]
        assert "type" in node or "enum" in node, f"{path} has no type"
    for path, node in object_nodes(SCHEMA):
        assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"


def test_a_destination_with_both_pods_and_an_address_is_refused(tmp_path: Path) -> None:
    values = tmp_path / "both.yaml"
    both = {"namespace": "kube-system", "podLabels": {"k8s-app": "kube-dns"}, "cidr": "169.254.20.10"}
    values.write_text(yaml.safe_dump({"operator": {"platform": {"dns": {"destinations": [both]}}}}))
    result = run_helm("template", str(CHART), "--values", str(values))
    assert result.returncode != 0
    assert "/operator/platform/dns/destinations/0" in result.stderr and "oneOf" in result.stderr, (
        result.stderr
    )
