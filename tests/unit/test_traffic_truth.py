"""The traffic truth table: for every example, on every platform variant, every declared flow and platform
essential passes the rendered NetworkPolicies and the undeclared ones (other pods, ports, namespaces,
addresses) do not, by an evaluator of NetworkPolicy semantics written apart from the renderer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from netpol_eval import Mode
from payguard.model import Enforcement
from payguard.spec import parse_payment_service
from platform_variants import VARIANTS, platform
from traffic_table import traffic_table

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def load(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(path.read_text())
    return body


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_declared_flows_pass_and_undeclared_ones_do_not(example: Path, variant: str) -> None:
    service = parse_payment_service(load(example))
    table = traffic_table(service, platform(variant), mode=Mode.SIDECAR)
    assert len(table.allowed) >= 3 and len(table.denied) >= 8, "the table is too small to mean anything"
    if service.enforcement is Enforcement.AUDIT:
        # Audit writes nothing that blocks traffic: no NetworkPolicy, so nothing at all is denied.
        assert table.network.policies == []
        assert all(table.network.allows(row.flow) for row in table.denied)
        return
    assert table.wrong() == []


def test_principal_callers_with_selectors_admit_only_their_pods() -> None:
    body = load(REPO / "examples" / "checkout.yaml")
    gateway, order = body["spec"]["workloads"][0], body["spec"]["workloads"][1]
    gateway["callers"][0]["principal"]["selector"] = {"istio": "ingressgateway"}
    order["callers"][1]["principal"]["selector"] = {"app.kubernetes.io/name": "prometheus"}
    table = traffic_table(parse_payment_service(body), platform("kube-dns"))

    bystanders = [row for row in table.denied if "bystander" in row.why]
    assert len(bystanders) == 2  # one per principal caller, on its one port
    assert table.wrong() == []


def test_without_a_selector_l3_admits_the_callers_namespace() -> None:
    table = traffic_table(
        parse_payment_service(load(REPO / "examples" / "checkout.yaml")), platform("kube-dns")
    )
    admitted = [row for row in table.allowed if "bystander" in row.why]
    assert len(admitted) == 2
    assert table.wrong() == []


def test_the_table_catches_a_renderer_that_opens_too_much() -> None:
    """The table can fail: drop every ingress rule's peers (admit anyone) and strangers get through."""
    service = parse_payment_service(load(REPO / "examples" / "checkout.yaml"))
    table = traffic_table(service, platform("kube-dns"))
    for policy in table.network.policies:
        for rule in policy["spec"].get("ingress", []):
            rule.pop("from", None)
    assert any("undeclared pod" in problem for problem in table.wrong())


def test_the_table_catches_a_renderer_that_forgets_an_essential() -> None:
    service = parse_payment_service(load(REPO / "examples" / "minimal.yaml"))
    table = traffic_table(service, platform("nodelocal-dns"))
    for policy in table.network.policies:
        policy["spec"]["egress"] = [
            r
            for r in policy["spec"]["egress"]
            if {"ipBlock": {"cidr": "169.254.20.10/32"}} not in r.get("to", [])
        ]
    assert any("reaches the cluster DNS" in problem for problem in table.wrong())
