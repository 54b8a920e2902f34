"""Render: every example renders to its committed golden manifests, and the rules of DESIGN §3 hold.

Regenerate the golden files after an intended change with `PAYGUARD_UPDATE_GOLDEN=1 pytest tests/unit`;
the run then rewrites them and fails, so an update is never mistaken for a pass. Review the diff.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from payguard.model import InvalidSpec, PaymentService
from payguard.platform import Destination, Platform, ServicePort
from payguard.render import Manifest, child_key, render_children
from payguard.spec import parse_payment_service

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent / "golden"
FIXED_UID = "00000000-0000-0000-0000-000000000001"
UPDATE_GOLDEN = os.environ.get("PAYGUARD_UPDATE_GOLDEN") == "1"

MANAGED_BY = "app.kubernetes.io/managed-by"
SERVICE_LABEL = "payguard.dev/payment-service"
WORKLOAD_LABEL = "payguard.dev/workload"
DRY_RUN = "istio.io/dry-run"
DNS_EGRESS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}
ISTIOD_EGRESS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}},
            "podSelector": {"matchLabels": {"app": "istiod"}},
        }
    ],
    "ports": [{"port": 15012, "protocol": "TCP"}],
}


def render(service: PaymentService) -> tuple[Manifest, ...]:
    """The children under the default platform, as the operator renders them with no platform flags."""
    return render_children(service, platform=Platform())


# --- builders --------------------------------------------------------------------------------------------


def load_example(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(path.read_text())
    body["metadata"]["uid"] = FIXED_UID
    return body


def example_service(stem: str) -> PaymentService:
    return parse_payment_service(load_example(REPO / "examples" / f"{stem}.yaml"))


def service(*workloads: dict[str, Any], enforcement: str = "Enforce", **spec: Any) -> PaymentService:
    return parse_payment_service(
        {
            "apiVersion": "payguard.dev/v1alpha1",
            "kind": "PaymentService",
            "metadata": {"name": "checkout", "namespace": "payments", "uid": FIXED_UID},
            "spec": {
                "enforcement": enforcement,
                "workloads": list(workloads),
                "certificates": {"issuerRef": {"name": "payments-ca"}},
                **spec,
            },
        }
    )


def workload(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "selector": {"app": name}, "serviceAccount": f"{name}-sa", **fields}


def only(children: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    matches = [c for c in children if c["kind"] == kind and c["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, got {len(matches)}"
    return matches[0]


def dump(children: tuple[Manifest, ...]) -> str:
    return yaml.safe_dump_all(children, sort_keys=True)


# --- golden files ----------------------------------------------------------------------------------------


def test_every_example_has_a_golden_file_and_no_golden_file_is_orphaned() -> None:
    assert EXAMPLES, "no examples found"
    assert sorted(p.name for p in GOLDEN.glob("*.yaml")) == sorted(p.name for p in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_renders_to_its_golden_manifests(example: Path) -> None:
    rendered = dump(render(parse_payment_service(load_example(example))))
    golden = GOLDEN / example.name
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(rendered)
        pytest.fail(f"PAYGUARD_UPDATE_GOLDEN=1: rewrote {golden}; review the diff and rerun without it")
    assert golden.exists(), f"{golden} missing: run with PAYGUARD_UPDATE_GOLDEN=1 to create it"
    assert rendered == golden.read_text(), (
        f"{example.name} renders differently from {golden}; if intended, regenerate with "
        "PAYGUARD_UPDATE_GOLDEN=1 and review the diff"
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_rendered_child_carries_payguard_labels_and_a_controller_owner(example: Path) -> None:
    svc = parse_payment_service(load_example(example))
    children = render(svc)
    assert children
    for child in children:
        metadata = child["metadata"]
        workload_name = metadata["labels"][WORKLOAD_LABEL]
        assert metadata["name"] == f"{svc.name}-{workload_name}"
        assert metadata["namespace"] == "payments"
        assert metadata["labels"] == {
            MANAGED_BY: "payguard",
            SERVICE_LABEL: svc.name,
            WORKLOAD_LABEL: workload_name,
            "payguard.dev/pci-scope": svc.pci_scope.value,
        }
        assert len(metadata["annotations"]["payguard.dev/rendered-hash"]) == 16
        assert metadata["ownerReferences"] == [
            {
                "apiVersion": "payguard.dev/v1alpha1",
                "kind": "PaymentService",
                "name": svc.name,
                "uid": FIXED_UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_network_policy_port_names_its_protocol(example: Path) -> None:
    children = render(parse_payment_service(load_example(example)))
    policies = [c for c in children if c["kind"] == "NetworkPolicy"]
    for policy in policies:
        for direction in ("ingress", "egress"):
            for rule in policy["spec"].get(direction, []):
                for port in rule.get("ports", []):
                    assert set(port) == {"port", "protocol"}
                    assert port["protocol"] in {"TCP", "UDP", "SCTP"}


# --- Enforce: what each workload gets --------------------------------------------------------------------


def test_enforce_mode_renders_every_control_per_workload() -> None:
    children = render(service(workload("api"), workload("db")))
    assert [child_key(c) for c in children] == [
        ("PeerAuthentication", "payments", "checkout-api"),
        ("AuthorizationPolicy", "payments", "checkout-api"),
        ("NetworkPolicy", "payments", "checkout-api"),
        ("Certificate", "payments", "checkout-api"),
        ("PeerAuthentication", "payments", "checkout-db"),
        ("AuthorizationPolicy", "payments", "checkout-db"),
        ("NetworkPolicy", "payments", "checkout-db"),
        ("Certificate", "payments", "checkout-db"),
    ]
    istio = {c["apiVersion"] for c in children if c["kind"] in ("PeerAuthentication", "AuthorizationPolicy")}
    assert istio == {"security.istio.io/v1"}
    assert only(children, "NetworkPolicy", "checkout-api")["apiVersion"] == "networking.k8s.io/v1"
    assert only(children, "Certificate", "checkout-api")["apiVersion"] == "cert-manager.io/v1"


def test_peer_authentication_is_strict_for_the_workload_selector() -> None:
    children = render(service(workload("api", selector={"app": "api", "tier": "edge"})))
    assert only(children, "PeerAuthentication", "checkout-api")["spec"] == {
        "selector": {"matchLabels": {"app": "api", "tier": "edge"}},
        "mtls": {"mode": "STRICT"},
    }


def test_workload_without_callers_gets_allow_nothing_policy() -> None:
    children = render(service(workload("rotator")))
    spec = only(children, "AuthorizationPolicy", "checkout-rotator")["spec"]
    assert spec == {"selector": {"matchLabels": {"app": "rotator"}}, "action": "ALLOW"}
    assert "rules" not in spec


def test_workload_without_callers_gets_no_ingress_rules() -> None:
    children = render(service(workload("rotator")))
    spec = only(children, "NetworkPolicy", "checkout-rotator")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in spec


def test_caller_workload_becomes_a_spiffe_principal_of_its_service_account() -> None:
    svc = service(
        workload("api", ports=[{"name": "https", "port": 8443}], callers=[{"workload": "gateway"}]),
        workload("gateway"),
    )
    rules = only(render(svc), "AuthorizationPolicy", "checkout-api")["spec"]["rules"]
    assert rules == [{"from": [{"source": {"principals": ["cluster.local/ns/payments/sa/gateway-sa"]}}]}]


def test_principal_caller_uses_the_declared_trust_domain() -> None:
    svc = service(
        workload(
            "api",
            ports=[{"name": "https", "port": 8443}],
            callers=[{"principal": {"namespace": "edge", "serviceAccount": "ingress"}}],
        ),
        trustDomain="payments.example.com",
    )
    rules = only(render(svc), "AuthorizationPolicy", "checkout-api")["spec"]["rules"]
    assert rules[0]["from"] == [{"source": {"principals": ["payments.example.com/ns/edge/sa/ingress"]}}]


def test_each_caller_gets_its_own_rule_with_ports_as_strings_methods_and_paths() -> None:
    svc = service(
        workload(
            "api",
            ports=[{"name": "https", "port": 8443}, {"name": "metrics", "port": 9090}],
            callers=[
                {"workload": "gateway", "ports": [8443], "methods": ["GET", "POST"], "paths": ["/v1/*"]},
                {"principal": {"namespace": "monitoring", "serviceAccount": "prometheus"}, "ports": [9090]},
            ],
        ),
        workload("gateway"),
    )
    rules = only(render(svc), "AuthorizationPolicy", "checkout-api")["spec"]["rules"]
    assert rules == [
        {
            "from": [{"source": {"principals": ["cluster.local/ns/payments/sa/gateway-sa"]}}],
            "to": [{"operation": {"ports": ["8443"], "methods": ["GET", "POST"], "paths": ["/v1/*"]}}],
        },
        {
            "from": [{"source": {"principals": ["cluster.local/ns/monitoring/sa/prometheus"]}}],
            "to": [{"operation": {"ports": ["9090"]}}],
        },
    ]


def test_caller_without_ports_is_admitted_at_l4_on_every_declared_port_with_its_protocol() -> None:
    svc = service(
        workload(
            "api",
            ports=[{"name": "dns", "port": 5353, "protocol": "UDP"}, {"name": "https", "port": 8443}],
            callers=[{"workload": "gateway"}],
        ),
        workload("gateway"),
    )
    ingress = only(render(svc), "NetworkPolicy", "checkout-api")["spec"]["ingress"]
    assert ingress == [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "gateway"}}}],
            "ports": [{"port": 5353, "protocol": "UDP"}, {"port": 8443, "protocol": "TCP"}],
        }
    ]


def test_principal_caller_is_admitted_at_l3_by_its_namespace() -> None:
    svc = service(
        workload(
            "api",
            ports=[{"name": "https", "port": 8443}],
            callers=[{"principal": {"namespace": "edge", "serviceAccount": "ingress"}, "ports": [8443]}],
        )
    )
    ingress = only(render(svc), "NetworkPolicy", "checkout-api")["spec"]["ingress"]
    assert ingress == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}}}],
            "ports": [{"port": 8443, "protocol": "TCP"}],
        }
    ]


def test_workload_without_egress_may_reach_only_dns_and_istiod() -> None:
    spec = only(render(service(workload("rotator"))), "NetworkPolicy", "checkout-rotator")["spec"]
    assert spec["egress"] == [DNS_EGRESS, ISTIOD_EGRESS]


def test_declared_egress_comes_before_the_platform_essentials() -> None:
    svc = service(
        workload("api", egress=[{"workload": "db", "ports": [5432]}]),
        workload("db", ports=[{"name": "pg", "port": 5432}]),
    )
    egress = only(render(svc), "NetworkPolicy", "checkout-api")["spec"]["egress"]
    assert egress == [
        {
            "to": [{"podSelector": {"matchLabels": {"app": "db"}}}],
            "ports": [{"port": 5432, "protocol": "TCP"}],
        },
        DNS_EGRESS,
        ISTIOD_EGRESS,
    ]


def test_workload_egress_without_ports_reaches_every_port_the_target_declares() -> None:
    svc = service(
        workload("api", egress=[{"workload": "db"}]),
        workload("db", ports=[{"name": "pg", "port": 5432}, {"name": "metrics", "port": 9187}]),
    )
    egress = only(render(svc), "NetworkPolicy", "checkout-api")["spec"]["egress"]
    assert egress[0]["ports"] == [{"port": 5432, "protocol": "TCP"}, {"port": 9187, "protocol": "TCP"}]


def test_cidr_egress_lists_only_declared_ports() -> None:
    svc = service(workload("api", egress=[{"cidr": "203.0.113.0/24", "ports": [443, 8443]}]))
    egress = only(render(svc), "NetworkPolicy", "checkout-api")["spec"]["egress"]
    assert egress[0] == {
        "to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}],
        "ports": [{"port": 443, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}],
    }
    assert egress[1:] == [DNS_EGRESS, ISTIOD_EGRESS]


def test_platform_override_moves_the_essential_egress() -> None:
    platform = Platform(
        dns=(Destination("dns", (("app", "coredns"),)),),
        mesh=(Destination("mesh", (("istio", "pilot"),)),),
        mesh_ports=(ServicePort(15010),),
    )
    children = render_children(service(workload("api")), platform=platform)
    egress = only(children, "NetworkPolicy", "checkout-api")["spec"]["egress"]
    assert egress == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns"}},
                    "podSelector": {"matchLabels": {"app": "coredns"}},
                }
            ],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
        },
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mesh"}},
                    "podSelector": {"matchLabels": {"istio": "pilot"}},
                }
            ],
            "ports": [{"port": 15010, "protocol": "TCP"}],
        },
    ]


def test_port_number_declared_for_two_protocols_is_admitted_on_both() -> None:
    dns_ports = [
        {"name": "dns-udp", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]
    svc = service(
        workload("resolver", ports=dns_ports, callers=[{"workload": "client"}]),
        workload("client", egress=[{"workload": "resolver"}]),
    )
    children = render(svc)
    both = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    ingress = only(children, "NetworkPolicy", "checkout-resolver")["spec"]["ingress"]
    egress = only(children, "NetworkPolicy", "checkout-client")["spec"]["egress"]
    assert ingress[0]["ports"] == both
    assert egress[0]["ports"] == both


def test_egress_to_a_workload_without_ports_opens_no_port_range() -> None:
    try:
        svc = service(workload("api", egress=[{"workload": "db"}]), workload("db"))
    except InvalidSpec:
        return  # refusing the spec is an acceptable fix too
    egress = only(render(svc), "NetworkPolicy", "checkout-api")["spec"]["egress"]
    assert all(rule.get("ports") for rule in egress)


def test_enforce_mode_marks_nothing_as_dry_run() -> None:
    for child in render(example_service("checkout")):
        assert DRY_RUN not in child["metadata"]["annotations"]


# --- Audit -----------------------------------------------------------------------------------------------


def test_audit_mode_renders_dry_run_authorization_policies_and_certificates_only() -> None:
    svc = service(
        workload("api", ports=[{"name": "https", "port": 8443}], callers=[{"workload": "db"}]),
        workload("db"),
        enforcement="Audit",
    )
    children = render(svc)
    assert [child_key(c) for c in children] == [
        ("AuthorizationPolicy", "payments", "checkout-api"),
        ("Certificate", "payments", "checkout-api"),
        ("AuthorizationPolicy", "payments", "checkout-db"),
        ("Certificate", "payments", "checkout-db"),
    ]
    for child in children:
        if child["kind"] == "AuthorizationPolicy":
            assert child["metadata"]["annotations"][DRY_RUN] == "true"
    assert only(children, "AuthorizationPolicy", "checkout-api")["spec"]["rules"] == [
        {"from": [{"source": {"principals": ["cluster.local/ns/payments/sa/db-sa"]}}]}
    ]


def test_audit_example_writes_nothing_that_blocks_traffic() -> None:
    children = render(example_service("audit-mode"))
    assert {c["kind"] for c in children} == {"AuthorizationPolicy", "Certificate"}
    assert len(children) == 4
    policies = [c for c in children if c["kind"] == "AuthorizationPolicy"]
    assert all(c["metadata"]["annotations"][DRY_RUN] == "true" for c in policies)


# --- purity ----------------------------------------------------------------------------------------------


def test_rendering_is_deterministic() -> None:
    body = load_example(REPO / "examples" / "checkout.yaml")
    first = dump(render(parse_payment_service(copy.deepcopy(body))))
    second = dump(render(parse_payment_service(copy.deepcopy(body))))
    assert first == second
    svc = parse_payment_service(body)
    assert render(svc) == render(svc)


def test_rendered_children_do_not_share_mutable_state() -> None:
    svc = example_service("checkout")
    first = render(svc)
    first[0]["spec"]["selector"]["matchLabels"]["tampered"] = "yes"
    first[0]["metadata"]["labels"]["tampered"] = "yes"
    second = render(svc)
    assert "tampered" not in second[0]["spec"]["selector"]["matchLabels"]
    assert "tampered" not in second[0]["metadata"]["labels"]


def test_child_key_is_kind_namespace_and_name() -> None:
    child = render(example_service("minimal"))[0]
    assert child_key(child) == ("PeerAuthentication", "payments", "key-rotation-rotator")


def test_certificate_carries_the_spiffe_identity_and_the_key_policy() -> None:
    cert = only(render(example_service("checkout")), "Certificate", "checkout-order-service")
    assert cert["spec"]["uris"] == ["spiffe://cluster.local/ns/payments/sa/order-service"]
    assert cert["spec"]["secretName"] == "checkout-order-service-tls"
    assert cert["spec"]["duration"] == "24h0m0s"
    assert cert["spec"]["renewBefore"] == "8h0m0s"
    assert cert["spec"]["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert cert["spec"]["usages"] == ["digital signature", "server auth", "client auth"]
    assert cert["spec"]["issuerRef"] == {
        "name": "payments-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
