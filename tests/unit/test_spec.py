"""Parsing a PaymentService into the model: defaults, the InvalidSpec paths, and agreement with the CRD."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from payguard import model
from payguard.model import (
    Caller,
    DriftPolicy,
    Enforcement,
    HttpMethod,
    InvalidSpec,
    IssuerKind,
    KeyAlgorithm,
    PciScope,
    Port,
    Principal,
    Protocol,
)
from payguard.spec import parse_go_duration, parse_payment_service

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
CRD = yaml.safe_load((REPO / "crds" / "paymentservice.yaml").read_text())


def minimal_body() -> dict[str, Any]:
    return {
        "apiVersion": "payguard.dev/v1alpha1",
        "kind": "PaymentService",
        "metadata": {"name": "checkout", "namespace": "payments"},
        "spec": {
            "workloads": [
                {"name": "order-service", "selector": {"app": "order"}, "serviceAccount": "order-service"}
            ],
            "certificates": {"issuerRef": {"name": "payments-ca"}},
        },
    }


def two_workload_body() -> dict[str, Any]:
    body = minimal_body()
    body["spec"]["workloads"] = [
        {
            "name": "api-gateway",
            "selector": {"app": "gateway"},
            "serviceAccount": "api-gateway",
            "egress": [{"workload": "order-service", "ports": [8443]}],
        },
        {
            "name": "order-service",
            "selector": {"app": "order"},
            "serviceAccount": "order-service",
            "ports": [{"name": "https", "port": 8443}],
            "callers": [
                {"workload": "api-gateway", "ports": [8443], "methods": ["POST"], "paths": ["/v1/*"]}
            ],
        },
    ]
    return body


def schema_at(*names: str) -> dict[str, Any]:
    """The CRD's OpenAPI schema node reached by property names ('[]' steps into list items)."""
    node: dict[str, Any] = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for name in names:
        node = node["items"] if name == "[]" else node["properties"][name]
    return node


# --- parsing and defaults --------------------------------------------------------------------------------


def test_minimal_manifest_gets_every_default() -> None:
    service = parse_payment_service(minimal_body())

    assert service.pci_scope is PciScope.CDE
    assert service.enforcement is Enforcement.ENFORCE
    assert service.drift_policy is DriftPolicy.REVERT
    assert service.trust_domain == "cluster.local"
    certificates = service.certificates
    assert certificates.issuer_ref.kind is IssuerKind.ISSUER
    assert certificates.issuer_ref.group == "cert-manager.io"
    assert certificates.duration == timedelta(hours=24)
    assert certificates.renew_before == timedelta(hours=8)
    assert certificates.private_key.algorithm is KeyAlgorithm.ECDSA
    assert certificates.private_key.size == 256
    assert certificates.private_key.rotation_policy == "Always"
    (workload,) = service.workloads
    assert (workload.ports, workload.callers, workload.egress) == ((), (), ())


def test_model_defaults_match_the_crd_defaults() -> None:
    assert schema_at("spec", "pciScope")["default"] == model.PciScope.CDE
    assert schema_at("spec", "enforcement")["default"] == model.Enforcement.ENFORCE
    assert schema_at("spec", "driftPolicy")["default"] == model.DriftPolicy.REVERT
    assert schema_at("spec", "trustDomain")["default"] == model.PaymentService.trust_domain
    assert schema_at("spec", "certificates", "duration")["default"] == "24h"
    assert schema_at("spec", "certificates", "renewBefore")["default"] == "8h"
    assert schema_at("spec", "certificates", "issuerRef", "kind")["default"] == model.IssuerRef.kind
    assert (
        schema_at("spec", "certificates", "privateKey", "algorithm")["default"] == model.PrivateKey.algorithm
    )
    assert schema_at("spec", "workloads", "[]", "ports", "[]", "protocol")["default"] == Protocol.TCP


def test_model_limits_match_the_crd_limits() -> None:
    workload = ("spec", "workloads", "[]")
    assert schema_at("spec", "workloads")["maxItems"] == model.MAX_WORKLOADS
    assert schema_at(*workload, "selector")["maxProperties"] == model.MAX_SELECTOR_LABELS
    assert schema_at(*workload, "ports")["maxItems"] == model.MAX_PORTS
    assert schema_at(*workload, "callers")["maxItems"] == model.MAX_CALLERS
    assert schema_at(*workload, "egress")["maxItems"] == model.MAX_EGRESS_RULES
    assert schema_at(*workload, "callers", "[]", "ports")["maxItems"] == model.MAX_RULE_PORTS
    assert schema_at(*workload, "egress", "[]", "ports")["maxItems"] == model.MAX_RULE_PORTS
    assert schema_at(*workload, "callers", "[]", "paths")["maxItems"] == model.MAX_PATHS
    assert schema_at(*workload, "callers", "[]", "paths", "[]")["maxLength"] == model.MAX_PATH_LENGTH
    assert schema_at(*workload, "callers", "[]", "methods", "[]")["enum"] == [
        method.value for method in HttpMethod
    ]
    assert schema_at("spec", "pciScope")["enum"] == [scope.value for scope in PciScope]
    assert schema_at("spec", "certificates", "privateKey", "algorithm")["enum"] == [
        a.value for a in KeyAlgorithm
    ]


def test_full_manifest_is_parsed_into_typed_values() -> None:
    body = two_workload_body()
    body["metadata"].update(uid="1234", generation=7)
    body["spec"].update(
        pciScope="connected", enforcement="Audit", driftPolicy="Report", trustDomain="pay.example"
    )
    body["spec"]["workloads"][1]["callers"].append(
        {"principal": {"namespace": "edge", "serviceAccount": "ingress-gateway"}}
    )
    body["spec"]["workloads"][1]["egress"] = [{"cidr": "203.0.113.0/24", "ports": [443]}]
    body["spec"]["certificates"] = {
        "issuerRef": {"name": "payments-ca", "kind": "ClusterIssuer"},
        "duration": "12h",
        "renewBefore": "90m",
        "privateKey": {"algorithm": "RSA", "size": 4096},
    }

    service = parse_payment_service(body)

    assert (service.uid, service.generation) == ("1234", 7)
    assert (service.pci_scope, service.enforcement, service.drift_policy) == ("connected", "Audit", "Report")
    order = service.workload("order-service")
    assert order.ports == (Port(name="https", port=8443, protocol=Protocol.TCP),)
    assert order.callers[0] == Caller(
        workload="api-gateway", ports=(8443,), methods=(HttpMethod.POST,), paths=("/v1/*",)
    )
    assert order.callers[1].principal == Principal(namespace="edge", service_account="ingress-gateway")
    assert order.egress[0].cidr == ipaddress.ip_network("203.0.113.0/24")
    assert service.certificates.duration == timedelta(hours=12)
    assert service.certificates.renew_before == timedelta(minutes=90)
    assert (service.certificates.private_key.algorithm, service.certificates.private_key.size) == (
        "RSA",
        4096,
    )


def test_rsa_key_without_a_size_defaults_to_3072_bits_not_cert_managers_2048() -> None:
    body = minimal_body()
    body["spec"]["certificates"]["privateKey"] = {"algorithm": "RSA"}
    assert parse_payment_service(body).certificates.private_key.size == 3072


def test_ed25519_key_has_no_size() -> None:
    body = minimal_body()
    body["spec"]["certificates"]["privateKey"] = {"algorithm": "Ed25519"}
    assert parse_payment_service(body).certificates.private_key.size is None


def test_selector_is_kept_sorted_and_hashable() -> None:
    body = minimal_body()
    body["spec"]["workloads"][0]["selector"] = {"tier": "backend", "app": "order"}
    service = parse_payment_service(body)
    workload = service.workloads[0]
    assert workload.selector == (("app", "order"), ("tier", "backend"))
    assert workload.match_labels == {"app": "order", "tier": "backend"}
    assert hash(service) == hash(parse_payment_service(body))


def test_model_is_frozen() -> None:
    service = parse_payment_service(minimal_body())
    with pytest.raises(AttributeError):
        service.name = "other"  # type: ignore[misc]


def test_parsing_does_not_modify_the_body() -> None:
    body = two_workload_body()
    before = copy.deepcopy(body)
    parse_payment_service(body)
    assert body == before


def test_principals_and_spiffe_ids_use_the_trust_domain() -> None:
    body = two_workload_body()
    body["spec"]["trustDomain"] = "pay.example"
    service = parse_payment_service(body)
    order = service.workload("order-service")
    caller = service.caller_principal(order.callers[0])
    assert caller == Principal(namespace="payments", service_account="api-gateway")
    assert caller.istio_principal(service.trust_domain) == "pay.example/ns/payments/sa/api-gateway"
    assert service.principal_of(order).spiffe_id(service.trust_domain) == (
        "spiffe://pay.example/ns/payments/sa/order-service"
    )


def test_child_names_join_the_service_and_workload_names() -> None:
    service = parse_payment_service(minimal_body())
    assert service.child_name(service.workloads[0]) == "checkout-order-service"
    assert service.child_name("fraud-engine") == "checkout-fraud-engine"


def test_unknown_workload_lookup_raises_key_error() -> None:
    with pytest.raises(KeyError):
        parse_payment_service(minimal_body()).workload("nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("24h", timedelta(hours=24)), ("1h30m", timedelta(minutes=90)), ("90m", timedelta(minutes=90)),
     ("3600s", timedelta(hours=1)), ("1h0m0s", timedelta(hours=1))],
)  # fmt: skip
def test_durations_in_hours_minutes_and_seconds_are_parsed(text: str, expected: timedelta) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1d", "24", "1.5h", "-1h", "h", "1m1h"])
def test_other_duration_forms_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_parses(path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    service = parse_payment_service(body)
    assert service.namespace == "payments"
    assert service.workloads


def test_examples_include_the_realistic_checkout_flow() -> None:
    service = parse_payment_service(yaml.safe_load((REPO / "examples" / "checkout.yaml").read_text()))
    names = {workload.name for workload in service.workloads}
    assert names == {"api-gateway", "order-service", "fraud-engine", "settlement-gateway"}
    external = [rule for rule in service.workload("settlement-gateway").egress if rule.cidr is not None]
    assert [(str(rule.cidr), rule.ports) for rule in external] == [("203.0.113.0/24", (443,))]


# --- InvalidSpec names the field --------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _workload(body: dict[str, Any], index: int) -> dict[str, Any]:
    workload: dict[str, Any] = body["spec"]["workloads"][index]
    return workload


def _set(path: str, value: object) -> Mutation:
    """A mutation that sets a dotted path ('spec.workloads.1.callers.0.workload') in the body."""

    def mutate(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


INVALID: list[tuple[str, Mutation, str, str]] = [
    # (id, mutation of two_workload_body, expected InvalidSpec path, fragment of the message)
    ("missing spec", _delete("spec"), "spec", "required"),
    ("missing workloads", _delete("spec.workloads"), "spec.workloads", "required"),
    ("empty workloads", _set("spec.workloads", []), "spec.workloads", "between 1 and 32"),
    ("too many workloads", _set("spec.workloads", [{}] * 33), "spec.workloads", "between 1 and 32"),
    ("metadata name with dot", _set("metadata.name", "check.out"), "metadata.name", "must match"),
    ("child name too long", _set("metadata.name", "c" * 52), "spec.workloads[0].name", "63"),
    ("bad pci scope", _set("spec.pciScope", "cardholder"), "spec.pciScope", "cde, connected, out-of-scope"),
    ("bad enforcement", _set("spec.enforcement", "enforce"), "spec.enforcement", "Enforce, Audit"),
    ("bad drift policy", _set("spec.driftPolicy", "Ignore"), "spec.driftPolicy", "Revert, Report"),
    (
        "trust domain with slash",
        _set("spec.trustDomain", "cluster.local/ns"),
        "spec.trustDomain",
        "must match",
    ),
    ("uppercase workload name", _set("spec.workloads.0.name", "API"), "spec.workloads[0].name", "must match"),
    ("workload name as number", _set("spec.workloads.0.name", 7), "spec.workloads[0].name", "string"),
    (
        "duplicate workload",
        _set("spec.workloads.1.name", "api-gateway"),
        "spec.workloads[1].name",
        "duplicate",
    ),
    ("missing selector", _delete("spec.workloads.0.selector"), "spec.workloads[0].selector", "required"),
    ("empty selector", _set("spec.workloads.0.selector", {}), "spec.workloads[0].selector", "every pod"),
    (
        "bad label key",
        _set("spec.workloads.0.selector", {"a b": "x"}),
        "spec.workloads[0].selector",
        "label key",
    ),
    (
        "empty label value",
        _set("spec.workloads.0.selector", {"app": ""}),
        "spec.workloads[0].selector.app",
        "label",
    ),
    (
        "nested selectors",
        _set("spec.workloads.0.selector", {"app": "order", "tier": "x"}),
        "spec.workloads[1].selector",
        "api-gateway",
    ),
    (
        "default service account",
        _set("spec.workloads.0.serviceAccount", "default"),
        "spec.workloads[0].serviceAccount",
        "default",
    ),
    (
        "shared service account",
        _set("spec.workloads.1.serviceAccount", "api-gateway"),
        "spec.workloads[1].serviceAccount",
        "api-gateway",
    ),
    ("port zero", _set("spec.workloads.1.ports.0.port", 0), "spec.workloads[1].ports[0].port", "1 and 65535"),
    (
        "port too high",
        _set("spec.workloads.1.ports.0.port", 65536),
        "spec.workloads[1].ports[0].port",
        "65535",
    ),
    ("port as bool", _set("spec.workloads.1.ports.0.port", True), "spec.workloads[1].ports[0].port", "65535"),
    ("istio port", _set("spec.workloads.1.ports.0.port", 15021), "spec.workloads[1].ports[0].port", "Istio"),
    (
        "bad protocol",
        _set("spec.workloads.1.ports.0.protocol", "HTTP"),
        "spec.workloads[1].ports[0].protocol",
        "TCP, UDP, SCTP",
    ),
    (
        "port name without letter",
        _set("spec.workloads.1.ports.0.name", "8443"),
        "spec.workloads[1].ports[0].name",
        "letter",
    ),
    (
        "duplicate port name",
        _set("spec.workloads.1.ports", [{"name": "a", "port": 1}, {"name": "a", "port": 2}]),
        "spec.workloads[1].ports[1].name",
        "duplicate",
    ),
    (
        "duplicate port",
        _set("spec.workloads.1.ports", [{"name": "a", "port": 1}, {"name": "b", "port": 1}]),
        "spec.workloads[1].ports[1].port",
        "duplicate",
    ),
    (
        "caller with neither",
        _set("spec.workloads.1.callers.0", {"ports": [8443]}),
        "spec.workloads[1].callers[0]",
        "exactly one",
    ),
    (
        "caller with both",
        _set("spec.workloads.1.callers.0.principal", {"namespace": "a", "serviceAccount": "b"}),
        "spec.workloads[1].callers[0]",
        "exactly one",
    ),
    (
        "caller naming unknown workload",
        _set("spec.workloads.1.callers.0.workload", "ghost"),
        "spec.workloads[1].callers[0].workload",
        "ghost",
    ),
    (
        "caller naming itself",
        _set("spec.workloads.1.callers.0.workload", "order-service"),
        "spec.workloads[1].callers[0].workload",
        "itself",
    ),
    (
        "caller port not declared",
        _set("spec.workloads.1.callers.0.ports", [9999]),
        "spec.workloads[1].callers[0].ports[0]",
        "not declared",
    ),
    ("callers without ports", _delete("spec.workloads.1.ports"), "spec.workloads[1].ports", "required"),
    (
        "wildcard principal",
        _set("spec.workloads.1.callers.0", {"principal": {"namespace": "*", "serviceAccount": "x"}}),
        "spec.workloads[1].callers[0].principal.namespace",
        "must match",
    ),
    (
        "default principal",
        _set("spec.workloads.1.callers.0", {"principal": {"namespace": "e", "serviceAccount": "default"}}),
        "spec.workloads[1].callers[0].principal.serviceAccount",
        "default",
    ),
    (
        "principal that is own workload",
        _set(
            "spec.workloads.1.callers.0",
            {"principal": {"namespace": "payments", "serviceAccount": "api-gateway"}},
        ),
        "spec.workloads[1].callers[0].principal",
        "workload: api-gateway",
    ),
    (
        "principal that is itself",
        _set(
            "spec.workloads.1.callers.0",
            {"principal": {"namespace": "payments", "serviceAccount": "order-service"}},
        ),
        "spec.workloads[1].callers[0].principal",
        "itself",
    ),
    (
        "bad method",
        _set("spec.workloads.1.callers.0.methods", ["TRACE"]),
        "spec.workloads[1].callers[0].methods[0]",
        "GET",
    ),
    (
        "duplicate method",
        _set("spec.workloads.1.callers.0.methods", ["GET", "GET"]),
        "spec.workloads[1].callers[0].methods[1]",
        "duplicate",
    ),
    (
        "empty methods",
        _set("spec.workloads.1.callers.0.methods", []),
        "spec.workloads[1].callers[0].methods",
        "between 1",
    ),
    (
        "path without slash",
        _set("spec.workloads.1.callers.0.paths", ["v1"]),
        "spec.workloads[1].callers[0].paths[0]",
        "start with '/'",
    ),
    (
        "star path",
        _set("spec.workloads.1.callers.0.paths", ["*"]),
        "spec.workloads[1].callers[0].paths[0]",
        "start with '/'",
    ),
    (
        "inner star path",
        _set("spec.workloads.1.callers.0.paths", ["/v1/*/x"]),
        "spec.workloads[1].callers[0].paths[0]",
        "last character",
    ),
    (
        "dot-dot path",
        _set("spec.workloads.1.callers.0.paths", ["/v1/../admin"]),
        "spec.workloads[1].callers[0].paths[0]",
        "normalized",
    ),
    (
        "query in path",
        _set("spec.workloads.1.callers.0.paths", ["/v1?x=1"]),
        "spec.workloads[1].callers[0].paths[0]",
        "only contain",
    ),
    (
        "long path",
        _set("spec.workloads.1.callers.0.paths", ["/" + "a" * 256]),
        "spec.workloads[1].callers[0].paths[0]",
        "256",
    ),
    (
        "egress with neither",
        _set("spec.workloads.0.egress.0", {"ports": [1]}),
        "spec.workloads[0].egress[0]",
        "exactly one",
    ),
    (
        "egress with both",
        _set("spec.workloads.0.egress.0.cidr", "203.0.113.0/24"),
        "spec.workloads[0].egress[0]",
        "exactly one",
    ),
    (
        "egress to unknown workload",
        _set("spec.workloads.0.egress.0.workload", "ghost"),
        "spec.workloads[0].egress[0].workload",
        "ghost",
    ),
    (
        "egress to itself",
        _set("spec.workloads.0.egress.0.workload", "api-gateway"),
        "spec.workloads[0].egress[0].workload",
        "itself",
    ),
    (
        "egress port not declared by target",
        _set("spec.workloads.0.egress.0.ports", [9999]),
        "spec.workloads[0].egress[0].ports[0]",
        "order-service",
    ),
    (
        "egress cidr without ports",
        _set("spec.workloads.0.egress.0", {"cidr": "203.0.113.0/24"}),
        "spec.workloads[0].egress[0].ports",
        "required",
    ),
    (
        "egress to the internet",
        _set("spec.workloads.0.egress.0", {"cidr": "0.0.0.0/0", "ports": [443]}),
        "spec.workloads[0].egress[0].cidr",
        "too broad",
    ),
    (
        "egress to ipv6 internet",
        _set("spec.workloads.0.egress.0", {"cidr": "::/0", "ports": [443]}),
        "spec.workloads[0].egress[0].cidr",
        "too broad",
    ),
    (
        "egress to a /8",
        _set("spec.workloads.0.egress.0", {"cidr": "10.0.0.0/8", "ports": [443]}),
        "spec.workloads[0].egress[0].cidr",
        "/16",
    ),
    (
        "egress with host bits",
        _set("spec.workloads.0.egress.0", {"cidr": "203.0.113.7/24", "ports": [443]}),
        "spec.workloads[0].egress[0].cidr",
        "host bits",
    ),
    (
        "egress to a bare address",
        _set("spec.workloads.0.egress.0", {"cidr": "203.0.113.7", "ports": [443]}),
        "spec.workloads[0].egress[0].cidr",
        "CIDR",
    ),
    (
        "egress to metadata",
        _set("spec.workloads.0.egress.0", {"cidr": "169.254.169.254/32", "ports": [80]}),
        "spec.workloads[0].egress[0].cidr",
        "link-local",
    ),
    (
        "egress to azure wireserver",
        _set("spec.workloads.0.egress.0", {"cidr": "168.63.0.0/16", "ports": [80]}),
        "spec.workloads[0].egress[0].cidr",
        "metadata",
    ),
    (
        "egress to loopback",
        _set("spec.workloads.0.egress.0", {"cidr": "127.0.0.0/16", "ports": [80]}),
        "spec.workloads[0].egress[0].cidr",
        "loopback",
    ),
    ("missing certificates", _delete("spec.certificates"), "spec.certificates", "required"),
    ("missing issuer", _set("spec.certificates", {}), "spec.certificates.issuerRef", "required"),
    (
        "bad issuer kind",
        _set("spec.certificates.issuerRef.kind", "Vault"),
        "spec.certificates.issuerRef.kind",
        "ClusterIssuer",
    ),
    (
        "duration too long",
        _set("spec.certificates.duration", "25h"),
        "spec.certificates.duration",
        "1h and 24h",
    ),
    (
        "duration too short",
        _set("spec.certificates.duration", "59m"),
        "spec.certificates.duration",
        "1h and 24h",
    ),
    ("duration in days", _set("spec.certificates.duration", "1d"), "spec.certificates.duration", "hours"),
    (
        "renew before too late",
        _set("spec.certificates.renewBefore", "24h"),
        "spec.certificates.renewBefore",
        "shorter than duration",
    ),
    (
        "renew before too short",
        _set("spec.certificates.renewBefore", "1m"),
        "spec.certificates.renewBefore",
        "5m",
    ),
    (
        "rsa 2048",
        _set("spec.certificates.privateKey", {"algorithm": "RSA", "size": 2048}),
        "spec.certificates.privateKey.size",
        "3072 or 4096",
    ),
    (
        "ecdsa 521",
        _set("spec.certificates.privateKey", {"algorithm": "ECDSA", "size": 521}),
        "spec.certificates.privateKey.size",
        "256 or 384",
    ),
    (
        "ed25519 with size",
        _set("spec.certificates.privateKey", {"algorithm": "Ed25519", "size": 256}),
        "spec.certificates.privateKey.size",
        "omitted",
    ),
    (
        "bad algorithm",
        _set("spec.certificates.privateKey", {"algorithm": "DSA"}),
        "spec.certificates.privateKey.algorithm",
        "ECDSA",
    ),
    (
        "rotation never",
        _set("spec.certificates.privateKey", {"rotationPolicy": "Never"}),
        "spec.certificates.privateKey.rotationPolicy",
        "Always",
    ),
]


@pytest.mark.parametrize(
    ("mutation", "path", "fragment"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_spec_names_the_offending_field(mutation: Mutation, path: str, fragment: str) -> None:
    body = two_workload_body()
    parse_payment_service(body)  # the unmutated body is valid, so the mutation is what fails
    mutation(body)

    with pytest.raises(InvalidSpec) as raised:
        parse_payment_service(body)

    assert raised.value.path == path
    assert fragment in raised.value.message
    assert str(raised.value) == f"{path}: {raised.value.message}"


def test_a_body_that_is_not_an_object_is_invalid() -> None:
    with pytest.raises(InvalidSpec):
        parse_payment_service([])  # type: ignore[arg-type]


def test_principal_in_another_namespace_with_an_own_service_account_name_is_allowed() -> None:
    body = two_workload_body()
    _workload(body, 1)["callers"].append(
        {"principal": {"namespace": "edge", "serviceAccount": "api-gateway"}}
    )
    service = parse_payment_service(body)
    assert service.workload("order-service").callers[-1].principal == Principal("edge", "api-gateway")


def test_caller_without_ports_methods_or_paths_is_unrestricted_on_those() -> None:
    body = two_workload_body()
    _workload(body, 1)["callers"] = [{"workload": "api-gateway"}]
    (caller,) = parse_payment_service(body).workload("order-service").callers
    assert (caller.ports, caller.methods, caller.paths) == ((), (), ())


def test_ipv6_network_egress_is_accepted() -> None:
    body = two_workload_body()
    _workload(body, 0)["egress"].append({"cidr": "2001:db8:1234::/48", "ports": [443]})
    rule = parse_payment_service(body).workload("api-gateway").egress[-1]
    assert rule.cidr == ipaddress.ip_network("2001:db8:1234::/48")


@pytest.mark.parametrize(
    ("mutation", "path"),
    [
        (_set("spec.enforcment", "Audit"), "spec.enforcment"),
        (_set("spec.workloads.1.caller", []), "spec.workloads[1].caller"),
        (_set("spec.workloads.1.callers.0.method", ["GET"]), "spec.workloads[1].callers[0].method"),
        (
            _set("spec.certificates.privateKey", {"algorithm": "RSA", "bits": 4096}),
            "spec.certificates.privateKey.bits",
        ),
    ],
    ids=["spec", "workload", "caller", "private-key"],
)
def test_misspelt_field_is_refused_not_ignored(mutation: Mutation, path: str) -> None:
    body = two_workload_body()
    mutation(body)
    with pytest.raises(InvalidSpec) as raised:
        parse_payment_service(body)
    assert raised.value.path == path
    assert "unknown field" in raised.value.message
