"""`payguard explain` offline: each layer's verdict over the examples, and the object and rule deciding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from payguard.cli import main

REPO = Path(__file__).resolve().parents[2]
CHECKOUT = REPO / "examples" / "checkout.yaml"

FOREIGN = [
    {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "open-to-monitoring", "namespace": "payments"},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "order-service"}},
            "action": "ALLOW",
            "rules": [{"from": [{"source": {"namespaces": ["monitoring"]}}]}],
        },
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all-ingress", "namespace": "payments"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
    },
]

# (case, --from, --to, port, method, path, {layer: (verdict, decider fragment)}, overall)
CASES = [
    (
        "allowed",
        "istio-ingress/istio-ingressgateway",
        "api-gateway",
        8443,
        "POST",
        "/v1/payments/42",
        {
            "network (L3/L4)": ("allowed", "NetworkPolicy payments/checkout-api-gateway ingress[0]"),
            "mTLS": ("allowed", "PeerAuthentication payments/checkout-api-gateway"),
            "authorization (L7)": ("allowed", "AuthorizationPolicy payments/checkout-api-gateway rules[0]"),
        },
        "allowed",
    ),
    (
        "denied-at-l3",
        "api-gateway",
        "fraud-engine",
        9443,
        "POST",
        "/fraud.v1.FraudService/Score",
        {"network (L3/L4)": ("denied", "NetworkPolicy payments/checkout-fraud-engine")},
        "denied",
    ),
    (
        "denied-at-l7-wrong-method",
        "api-gateway",
        "order-service",
        8443,
        "DELETE",
        "/v1/orders",
        {
            "network (L3/L4)": ("allowed", "checkout-order-service ingress[0]"),
            "authorization (L7)": ("denied", "AuthorizationPolicy payments/checkout-order-service"),
        },
        "denied",
    ),
    (
        "denied-at-l7-wrong-path",
        "api-gateway",
        "order-service",
        8443,
        "GET",
        "/admin",
        {"authorization (L7)": ("denied", "AuthorizationPolicy payments/checkout-order-service")},
        "denied",
    ),
    (
        "denied-by-mtls",
        "203.0.113.9",
        "settlement-gateway",
        8443,
        None,
        None,
        {"mTLS": ("denied", "PeerAuthentication payments/checkout-settlement-gateway")},
        "denied",
    ),
]


def explain(
    capsys: pytest.CaptureFixture[str], *args: str | int | None, files: list[Path]
) -> tuple[int, dict]:
    source, target, port, method, path = args
    argv = ["explain", "--from", str(source), "--to", str(target), "--port", str(port), "-o", "json"]
    argv += ["--method", method] if method else []
    argv += ["--path", path] if path else []
    for file in files:
        argv += ["-f", str(file)]
    status = main(argv)
    return status, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("source", "target", "port", "method", "path", "layers", "overall"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_explain_names_the_deciding_object_at_each_layer(
    capsys: pytest.CaptureFixture[str],
    source: str,
    target: str,
    port: int,
    method: str | None,
    path: str | None,
    layers: dict[str, tuple[str, str]],
    overall: str,
) -> None:
    status, report = explain(capsys, source, target, port, method, path, files=[CHECKOUT])
    by_layer = {layer["layer"]: layer for layer in report["layers"]}
    for layer, (verdict, decider) in layers.items():
        assert by_layer[layer]["verdict"] == verdict, by_layer[layer]
        assert decider in by_layer[layer]["decided_by"], by_layer[layer]
    assert report["verdict"] == overall
    assert status == (0 if overall == "allowed" else 1)


def test_foreign_widening_policies_are_named_as_the_deciders(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    foreign = tmp_path / "foreign.yaml"
    foreign.write_text(yaml.safe_dump_all(FOREIGN))
    call = ("monitoring/grafana", "order-service", 8443, "GET", "/v1/orders")

    denied, before = explain(capsys, *call, files=[CHECKOUT])
    allowed, after = explain(capsys, *call, files=[CHECKOUT, foreign])

    assert (denied, before["verdict"], allowed, after["verdict"]) == (1, "denied", 0, "allowed")
    deciders = {layer["layer"]: layer["decided_by"] for layer in after["layers"]}
    assert deciders["network (L3/L4)"] == "NetworkPolicy payments/allow-all-ingress ingress[0]"
    assert deciders["authorization (L7)"] == "AuthorizationPolicy payments/open-to-monitoring rules[0]"


def test_text_output_is_a_table_with_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "explain",
            "-f",
            str(CHECKOUT),
            "--from",
            "order-service",
            "--to",
            "fraud-engine",
            "--port",
            "9443",
            "--method",
            "POST",
            "--path",
            "/fraud.v1.FraudService/Score",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[1].split() == ["LAYER", "VERDICT", "DECIDED", "BY", "WHY"]
    assert out.endswith("verdict: allowed\n")


def test_an_unknown_workload_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["explain", "-f", str(CHECKOUT), "--from", "ghost", "--to", "api-gateway", "--port", "1"]) == 2
    )
    assert "ghost" in capsys.readouterr().err


# The other examples: (case, example, --from, --to, port, method, path, {layer: (verdict, decider)}, overall)
OTHER_EXAMPLES = [
    (
        "cross-namespace-allowed",
        "cross-namespace-caller.yaml",
        "support-tools/refund-auditor",
        "refund-api",
        8443,
        "GET",
        "/v1/refunds/7",
        {"authorization (L7)": ("allowed", "AuthorizationPolicy payments/refunds-refund-api rules[1]")},
        "allowed",
    ),
    (
        "cross-namespace-denied-at-l7",
        "cross-namespace-caller.yaml",
        "support-tools/refund-auditor",
        "refund-api",
        8443,
        "POST",
        "/v1/refunds/7",
        {
            "network (L3/L4)": ("allowed", "NetworkPolicy payments/refunds-refund-api ingress[1]"),
            "authorization (L7)": ("denied", "AuthorizationPolicy payments/refunds-refund-api"),
        },
        "denied",
    ),
    (
        "audit-mode-enforces-nothing",
        "audit-mode.yaml",
        "elsewhere/anyone",
        "web",
        8080,
        "DELETE",
        "/x",
        {
            "network (L3/L4)": ("allowed", "-"),
            "mTLS": ("allowed", "Istio default"),
            "authorization (L7)": ("allowed", "-"),  # the dry-run policy decides nothing
        },
        "allowed",
    ),
]


@pytest.mark.parametrize(
    ("example", "source", "target", "port", "method", "path", "layers", "overall"),
    [case[1:] for case in OTHER_EXAMPLES],
    ids=[case[0] for case in OTHER_EXAMPLES],
)
def test_explain_over_the_other_examples(
    capsys: pytest.CaptureFixture[str],
    example: str,
    source: str,
    target: str,
    port: int,
    method: str,
    path: str,
    layers: dict[str, tuple[str, str]],
    overall: str,
) -> None:
    status, report = explain(capsys, source, target, port, method, path, files=[REPO / "examples" / example])
    by_layer = {layer["layer"]: layer for layer in report["layers"]}
    for layer, (verdict, decider) in layers.items():
        assert (by_layer[layer]["verdict"], by_layer[layer]["decided_by"]) == (verdict, decider)
    assert report["verdict"] == overall
    assert status == (0 if overall == "allowed" else 1)


def test_a_policy_bound_by_target_refs_is_not_taken_for_a_namespace_wide_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bound = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "waypoint-allow-all", "namespace": "payments"},
        "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "other"}], "rules": [{}]},
    }
    foreign = tmp_path / "foreign.yaml"
    foreign.write_text(yaml.safe_dump_all([FOREIGN[1], bound]))
    status, report = explain(
        capsys, "monitoring/grafana", "order-service", 8443, "GET", "/v1/orders", files=[CHECKOUT, foreign]
    )
    deciders = {layer["layer"]: layer for layer in report["layers"]}
    assert deciders["authorization (L7)"]["verdict"] == "denied"
    assert "waypoint-allow-all" not in deciders["authorization (L7)"]["decided_by"]
    assert (status, report["verdict"]) == (1, "denied")
