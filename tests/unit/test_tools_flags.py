"""The tools' flags not proven elsewhere, each by its effect: `check -n`, `graph`'s platform flags,
`explain -n` and `explain --mesh-root-namespace`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from payguard.cli import main

REPO = Path(__file__).resolve().parents[2]
CHECKOUT = REPO / "examples" / "checkout.yaml"


def without_namespace(tmp_path: Path, **caller: Any) -> Path:
    body = yaml.safe_load(CHECKOUT.read_text())
    del body["metadata"]["namespace"]
    if caller:
        body["spec"]["workloads"][1]["callers"][0] = caller
    path = tmp_path / "checkout.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_check_namespace_flag_is_the_namespace_the_operator_judges_references_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # order-service's caller names api-gateway's identity by principal in "payments": only wrong there.
    path = without_namespace(tmp_path, principal={"namespace": "payments", "serviceAccount": "api-gateway"})
    assert main(["check", "-f", str(path), "-o", "json"]) == 0
    capsys.readouterr()
    assert main(["check", "-f", str(path), "-n", "payments", "-o", "json"]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert finding["field"] == "spec.workloads[1].callers[0].principal"


def test_graph_platform_flags_move_the_essentials(tmp_path: Path) -> None:
    default, moved = tmp_path / "default.dot", tmp_path / "moved.dot"
    assert main(["graph", "-f", str(CHECKOUT), "-o", str(default)]) == 0
    argv = ["graph", "-f", str(CHECKOUT), "-o", str(moved)]
    moves = [
        "--dns",
        "169.254.20.10",
        "--dns",
        "coredns/app=dns",
        "--dns-port",
        "5353",
        "--istiod",
        "mesh/app=x",
    ]
    assert main([*argv, *moves]) == 0
    assert "cluster DNS (kube-system)" in default.read_text()
    assert "53/UDP,TCP" in default.read_text()
    assert "cluster DNS (169.254.20.10/32, coredns)" in moved.read_text()
    assert "5353/UDP,TCP" in moved.read_text()
    assert "mesh control plane (mesh)" in moved.read_text()


def explain(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    status = main(["explain", *argv, "-o", "json"])
    return status, json.loads(capsys.readouterr().out)


def test_explain_namespace_flag_places_a_payment_service_that_names_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = without_namespace(tmp_path)
    call = ["--from", "api-gateway", "--to", "order-service", "--port", "8443", "--method", "GET"]
    status, report = explain(capsys, "-f", str(path), "-n", "shop", *call, "--path", "/v1/orders")
    assert status == 0
    deciders = {layer["layer"]: layer["decided_by"] for layer in report["layers"]}
    assert deciders["authorization (L7)"] == "AuthorizationPolicy shop/checkout-order-service rules[0]"


def test_explain_mesh_root_namespace_flag_makes_its_policies_mesh_wide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deny_all = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "freeze", "namespace": "mesh-root"},
        "spec": {"action": "DENY", "rules": [{}]},
    }
    policies = tmp_path / "mesh.yaml"
    policies.write_text(yaml.safe_dump(deny_all))
    argv = ["-f", str(CHECKOUT), "-f", str(policies), "--from", "api-gateway", "--to", "order-service"]
    argv += ["--port", "8443", "--method", "GET", "--path", "/v1/orders"]

    assert explain(capsys, *argv)[0] == 0  # istio-system is the root: mesh-root is just some namespace
    status, report = explain(capsys, *argv, "--mesh-root-namespace", "mesh-root")
    assert status == 1
    deciders = {layer["layer"]: layer["decided_by"] for layer in report["layers"]}
    assert deciders["authorization (L7)"] == "AuthorizationPolicy mesh-root/freeze rules[0]"


@pytest.mark.parametrize("tool", ["render", "check", "diff", "explain", "graph", "evidence"])
def test_every_tool_has_help_with_an_example(tool: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([tool, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text
    assert f"\n  payguard {tool} " in text
