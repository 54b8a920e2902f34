"""Ambient rendering: every example rendered as it would be in an ambient namespace with a waypoint (golden
files under golden/ambient/), and what ztunnel, waypoints and kubelet's probes need, rule by rule.

Regenerate after an intended change with `PAYGUARD_UPDATE_GOLDEN=1 pytest tests/unit`; review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from payguard.cli import main
from payguard.dataplane import SIDECAR_ONLY, Dataplanes, dataplanes
from payguard.model import PaymentService
from payguard.render import Manifest, render_children
from payguard.settings import Platform
from payguard.spec import parse_payment_service

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
AMBIENT_EXAMPLE = REPO / "examples" / "ambient.yaml"
AMBIENT_CLUSTER = REPO / "examples" / "ambient" / "cluster.yaml"
GOLDEN = Path(__file__).resolve().parent / "golden" / "ambient"
FIXED_UID = "00000000-0000-0000-0000-000000000001"
UPDATE_GOLDEN = os.environ.get("PAYGUARD_UPDATE_GOLDEN") == "1"
HBONE = {"port": 15008, "protocol": "TCP"}
PROBES = {"ipBlock": {"cidr": "169.254.7.127/32"}}


def load(path: Path) -> PaymentService:
    body = yaml.safe_load(path.read_text())
    body["metadata"]["uid"] = FIXED_UID
    return parse_payment_service(body)


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def k8s_service(name: str, selector: dict[str, str], **labels: str) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": name, "labels": labels}, "spec": {"selector": selector}}


def ambient_with_waypoint(service: PaymentService) -> Dataplanes:
    """An ambient namespace served by the waypoint `waypoint`, with one Service per workload."""
    return dataplanes(
        service,
        namespace=namespace(
            service.namespace, **{"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"}
        ),
        pods=[],
        services=[k8s_service(w.name, w.match_labels) for w in service.workloads],
    )


def cluster_objects() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(AMBIENT_CLUSTER.read_text()))


def example_dataplanes(service: PaymentService, *, waypoint: bool = True) -> Dataplanes:
    """The ambient example's own cluster objects (examples/ambient/cluster.yaml), with or without waypoint."""
    objects = cluster_objects()
    ns = next(o for o in objects if o["kind"] == "Namespace")
    services = [o for o in objects if o["kind"] == "Service"]
    if not waypoint:
        del ns["metadata"]["labels"]["istio.io/use-waypoint"]
    return dataplanes(service, namespace=ns, pods=[], services=services)


def dump(children: tuple[Manifest, ...]) -> str:
    return yaml.safe_dump_all(children, sort_keys=True)


def only(children: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    matches = [c for c in children if c["kind"] == kind and c["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, got {len(matches)}"
    return matches[0]


def check_golden(name: str, rendered: str) -> None:
    golden = GOLDEN / name
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered)
        pytest.fail(f"PAYGUARD_UPDATE_GOLDEN=1: rewrote {golden}; review the diff and rerun without it")
    assert golden.exists(), f"{golden} missing: run with PAYGUARD_UPDATE_GOLDEN=1 to create it"
    assert rendered == golden.read_text(), f"ambient render of {name} differs from {golden}"


# --- golden files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_in_an_ambient_namespace_with_a_waypoint_renders_to_its_golden_manifests(
    example: Path,
) -> None:
    service = load(example)
    planes = example_dataplanes(service) if example == AMBIENT_EXAMPLE else ambient_with_waypoint(service)
    check_golden(example.name, dump(render_children(service, platform=Platform(), dataplanes=planes)))


def test_ambient_example_without_a_waypoint_renders_to_its_golden_manifests() -> None:
    service = load(AMBIENT_EXAMPLE)
    planes = example_dataplanes(service, waypoint=False)
    check_golden(
        "ambient-no-waypoint.yaml", dump(render_children(service, platform=Platform(), dataplanes=planes))
    )


def test_every_ambient_golden_file_belongs_to_a_test() -> None:
    expected = {p.name for p in EXAMPLES} | {"ambient-no-waypoint.yaml"}
    assert {p.name for p in GOLDEN.glob("*.yaml")} == expected


def test_payguard_render_reads_ambient_mode_from_the_cluster_objects_in_its_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = yaml.safe_load(AMBIENT_EXAMPLE.read_text())
    body["metadata"]["uid"] = FIXED_UID
    example = tmp_path / "ambient.yaml"
    example.write_text(yaml.safe_dump(body))

    assert main(["render", "-f", str(example), "-f", str(AMBIENT_CLUSTER.parent)]) == 0
    assert capsys.readouterr().out == (GOLDEN / "ambient.yaml").read_text()
    assert main(["render", "-f", str(example)]) == 0  # no Namespace document: sidecar mode
    assert capsys.readouterr().out == (GOLDEN.parent / "ambient.yaml").read_text()


# --- rules -----------------------------------------------------------------------------------------------


def test_sidecar_dataplanes_render_exactly_what_the_default_renders() -> None:
    service = load(AMBIENT_EXAMPLE)
    assert render_children(service, platform=Platform(), dataplanes=SIDECAR_ONLY) == render_children(
        service, platform=Platform()
    )


def test_every_declared_ingress_rule_of_an_ambient_workload_also_admits_hbone() -> None:
    service = load(AMBIENT_EXAMPLE)
    children = render_children(service, platform=Platform(), dataplanes=example_dataplanes(service))
    ledger = only(children, "NetworkPolicy", "wallet-ledger")["spec"]["ingress"]
    api_gateway_rule, prometheus_rule = ledger[0], ledger[1]
    assert api_gateway_rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "wallet-api"}}}
    ]
    assert api_gateway_rule["ports"] == [{"port": 9443, "protocol": "TCP"}, HBONE]
    assert prometheus_rule["ports"] == [{"port": 9090, "protocol": "TCP"}, HBONE]


def test_ambient_workload_admits_kubelet_probes_from_the_link_local_source_on_its_tcp_ports_only() -> None:
    service = load(AMBIENT_EXAMPLE)
    children = render_children(service, platform=Platform(), dataplanes=example_dataplanes(service))
    ingress = only(children, "NetworkPolicy", "wallet-ledger")["spec"]["ingress"]
    probes = [rule for rule in ingress if rule["from"] == [PROBES]]
    assert probes == [
        {"from": [PROBES], "ports": [{"port": 9090, "protocol": "TCP"}, {"port": 9443, "protocol": "TCP"}]}
    ]


def test_ambient_workload_admits_its_waypoint_pods_on_hbone_only() -> None:
    service = load(AMBIENT_EXAMPLE)
    children = render_children(service, platform=Platform(), dataplanes=example_dataplanes(service))
    ingress = only(children, "NetworkPolicy", "wallet-ledger")["spec"]["ingress"]
    waypoint = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}},
        "podSelector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "waypoint"}},
    }
    assert {"from": [waypoint], "ports": [HBONE]} in ingress
    # token-vault's Service opts out of the waypoint: no waypoint reaches it
    vault = only(children, "NetworkPolicy", "wallet-token-vault")["spec"]["ingress"]
    assert all(rule["from"] != [waypoint] for rule in vault)


def test_egress_to_an_ambient_target_adds_hbone_and_its_waypoint_but_cidr_egress_is_unchanged() -> None:
    service = load(AMBIENT_EXAMPLE)
    children = render_children(service, platform=Platform(), dataplanes=example_dataplanes(service))
    egress = only(children, "NetworkPolicy", "wallet-api-gateway")["spec"]["egress"]
    assert egress[0]["ports"] == [{"port": 9443, "protocol": "TCP"}, HBONE]
    assert egress[1]["to"][0]["podSelector"] == {
        "matchLabels": {"gateway.networking.k8s.io/gateway-name": "waypoint"}
    }
    assert egress[1]["ports"] == [HBONE]
    ledger = only(children, "NetworkPolicy", "wallet-ledger")["spec"]["egress"]
    cidr = next(rule for rule in ledger if "ipBlock" in rule["to"][0])
    assert cidr["ports"] == [{"port": 443, "protocol": "TCP"}]


def test_sidecar_workload_called_by_an_ambient_workload_admits_hbone_from_that_caller_only() -> None:
    service = load(AMBIENT_EXAMPLE)
    # Only ledger's pod is labelled ambient; the namespace is not.
    pods = [
        {
            "metadata": {
                "name": "ledger-0",
                "labels": {"app.kubernetes.io/name": "ledger", "istio.io/dataplane-mode": "ambient"},
            }
        }
    ]
    planes = dataplanes(service, namespace=namespace("payments"), pods=pods, services=[])
    children = render_children(service, platform=Platform(), dataplanes=planes)
    vault = only(children, "NetworkPolicy", "wallet-token-vault")["spec"]["ingress"]
    assert vault == [
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "ledger"}}}],
            "ports": [{"port": 5443, "protocol": "TCP"}, HBONE],
        }
    ]
    gateway = only(children, "NetworkPolicy", "wallet-api-gateway")["spec"]
    assert gateway["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]  # neither side is ambient
    assert gateway["egress"][0]["ports"] == [{"port": 9443, "protocol": "TCP"}, HBONE]  # its target is


def test_l7_rules_go_to_a_waypoint_policy_bound_by_target_refs_and_ztunnel_admits_the_waypoint() -> None:
    service = load(AMBIENT_EXAMPLE)
    children = render_children(service, platform=Platform(), dataplanes=example_dataplanes(service))
    ztunnel = only(children, "AuthorizationPolicy", "wallet-ledger")["spec"]
    waypoint = only(children, "AuthorizationPolicy", "wallet-ledger-waypoint")["spec"]
    assert ztunnel["selector"] == {"matchLabels": {"app.kubernetes.io/name": "ledger"}}
    assert ztunnel["rules"] == [
        {
            "from": [{"source": {"principals": ["cluster.local/ns/monitoring/sa/prometheus"]}}],
            "to": [{"operation": {"ports": ["9090"]}}],
        },
        {
            "from": [{"source": {"principals": ["cluster.local/ns/payments/sa/waypoint"]}}],
            "to": [{"operation": {"ports": ["9090", "9443"]}}],
        },
    ]
    assert "selector" not in waypoint
    assert waypoint["targetRefs"] == [{"group": "", "kind": "Service", "name": "ledger"}]
    principals = [rule["from"][0]["source"]["principals"] for rule in waypoint["rules"]]
    assert principals == [
        ["cluster.local/ns/payments/sa/wallet-api"],
        ["cluster.local/ns/monitoring/sa/prometheus"],
    ]
    assert waypoint["rules"][0]["to"] == [
        {"operation": {"ports": ["9443"], "methods": ["POST"], "paths": ["/ledger.v1.Ledger/*"]}}
    ]


def test_without_a_waypoint_l7_callers_get_no_rule_anywhere_and_no_waypoint_policy_is_rendered() -> None:
    service = load(AMBIENT_EXAMPLE)
    children = render_children(
        service, platform=Platform(), dataplanes=example_dataplanes(service, waypoint=False)
    )
    assert not [c for c in children if c["metadata"]["name"].endswith("-waypoint")]
    ledger = only(children, "AuthorizationPolicy", "wallet-ledger")["spec"]
    assert [rule["from"][0]["source"]["principals"] for rule in ledger["rules"]] == [
        ["cluster.local/ns/monitoring/sa/prometheus"]
    ]
    gateway = only(children, "AuthorizationPolicy", "wallet-api-gateway")["spec"]
    assert "rules" not in gateway  # its only caller has L7 rules: ALLOW with no rules allows nothing


def test_l4_only_ambient_workload_keeps_its_single_selector_policy() -> None:
    service = load(AMBIENT_EXAMPLE)
    children = render_children(service, platform=Platform(), dataplanes=example_dataplanes(service))
    policies = [
        c
        for c in children
        if c["kind"] == "AuthorizationPolicy"
        and c["metadata"]["labels"]["payguard.dev/workload"] == "token-vault"
    ]
    assert [p["metadata"]["name"] for p in policies] == ["wallet-token-vault"]
    assert policies[0] == only(
        render_children(service, platform=Platform()), "AuthorizationPolicy", "wallet-token-vault"
    )


def test_audit_mode_in_ambient_renders_both_policies_dry_run_and_no_network_policy() -> None:
    body = yaml.safe_load(AMBIENT_EXAMPLE.read_text())
    body["spec"]["enforcement"] = "Audit"
    service = parse_payment_service(body)
    children = render_children(service, platform=Platform(), dataplanes=example_dataplanes(service))
    policies = [c for c in children if c["kind"] == "AuthorizationPolicy"]
    assert "wallet-ledger-waypoint" in {p["metadata"]["name"] for p in policies}
    assert all(p["metadata"]["annotations"]["istio.io/dry-run"] == "true" for p in policies)
    assert not [c for c in children if c["kind"] in ("NetworkPolicy", "PeerAuthentication")]


def test_peer_authentication_stays_strict_in_ambient_mode() -> None:
    service = load(AMBIENT_EXAMPLE)
    children = render_children(service, platform=Platform(), dataplanes=example_dataplanes(service))
    for workload in service.workloads:
        policy = only(children, "PeerAuthentication", service.child_name(workload))
        assert policy["spec"]["mtls"] == {"mode": "STRICT"}


def test_l4_only_workload_behind_a_waypoint_gets_a_waypoint_policy_as_ztunnel_admits_the_waypoint() -> None:
    service = load(REPO / "examples" / "cross-namespace-caller.yaml")
    children = render_children(service, platform=Platform(), dataplanes=ambient_with_waypoint(service))
    name = service.child_name(service.workloads[0])
    ztunnel = only(children, "AuthorizationPolicy", name)["spec"]
    waypoint = only(children, "AuthorizationPolicy", f"{name}-waypoint")["spec"]
    assert ztunnel["rules"][-1]["from"] == [
        {"source": {"principals": [f"cluster.local/ns/{service.namespace}/sa/waypoint"]}}
    ]
    # Every caller is checked at the waypoint, or the waypoint would forward anyone ztunnel admits.
    assert len(waypoint["rules"]) == len(service.workloads[0].callers)


def test_workload_without_callers_admits_neither_the_waypoint_nor_anyone_else() -> None:
    service = load(REPO / "examples" / "minimal.yaml")
    children = render_children(service, platform=Platform(), dataplanes=ambient_with_waypoint(service))
    assert [c["metadata"]["name"] for c in children if c["kind"] == "AuthorizationPolicy"] == [
        "key-rotation-rotator"
    ]
    assert "rules" not in only(children, "AuthorizationPolicy", "key-rotation-rotator")["spec"]
    assert "ingress" not in only(children, "NetworkPolicy", "key-rotation-rotator")["spec"]


def test_the_waypoint_policy_is_applied_before_ztunnel_starts_admitting_the_waypoint() -> None:
    service = load(AMBIENT_EXAMPLE)
    children = render_children(service, platform=Platform(), dataplanes=example_dataplanes(service))
    names = [c["metadata"]["name"] for c in children if c["kind"] == "AuthorizationPolicy"]
    assert names.index("wallet-ledger-waypoint") < names.index("wallet-ledger")
    assert names.index("wallet-api-gateway-waypoint") < names.index("wallet-api-gateway")
