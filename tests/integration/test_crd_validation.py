"""The PaymentService CRD on a real API server: bad manifests are refused at apply, naming the field.

Every invalid manifest below is one small change to a valid one, applied with server-side apply as
`kubectl apply --server-side` would. Each must be rejected (422) with a message that names the offending
field, and the typed model must refuse it too, so offline rendering is never more lenient than admission.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import TestCluster
from payguard.model import InvalidSpec
from payguard.spec import parse_payment_service

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
API_VERSION = "payguard.dev/v1alpha1"

Mutation = Callable[[dict[str, Any]], None]


def valid_manifest() -> dict[str, Any]:
    """api-gateway -> order-service -> settlement (external processor); every list holds one item."""
    return {
        "apiVersion": API_VERSION,
        "kind": "PaymentService",
        "metadata": {"name": "checkout"},
        "spec": {
            "pciScope": "cde",
            "enforcement": "Enforce",
            "driftPolicy": "Revert",
            "trustDomain": "cluster.local",
            "workloads": [
                {
                    "name": "api-gateway",
                    "selector": {"app": "api-gateway"},
                    "serviceAccount": "api-gateway",
                    "ports": [{"name": "https", "port": 8443, "protocol": "TCP"}],
                    "callers": [{"principal": {"namespace": "edge", "serviceAccount": "ingress-gateway"}}],
                    "egress": [{"workload": "order-service", "ports": [8443]}],
                },
                {
                    "name": "order-service",
                    "selector": {"app": "order-service"},
                    "serviceAccount": "order-service",
                    "ports": [{"name": "https", "port": 8443}],
                    "callers": [
                        {
                            "workload": "api-gateway",
                            "ports": [8443],
                            "methods": ["POST"],
                            "paths": ["/v1/orders/*"],
                        }
                    ],
                    "egress": [{"cidr": "203.0.113.0/24", "ports": [443]}],
                },
            ],
            "certificates": {
                "issuerRef": {"name": "payments-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"},
                "duration": "24h",
                "renewBefore": "8h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            },
        },
    }


def _node(body: dict[str, Any], parents: list[str]) -> Any:
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    return node


def put(path: str, value: object) -> Mutation:
    """Sets a dotted path (`spec.workloads.1.callers.0.workload`; digits index lists) to a value."""

    def mutate(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = _node(body, parents)
        node[int(last) if last.isdigit() else last] = copy.deepcopy(value)

    return mutate


def drop(path: str) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        del _node(body, parents)[last]

    return mutate


def many_workloads(count: int) -> list[dict[str, Any]]:
    return [{"name": f"w{i}", "selector": {"app": f"w{i}"}, "serviceAccount": f"w{i}"} for i in range(count)]


GATEWAY = "spec.workloads.0"
ORDER = "spec.workloads.1"
CALLER = "spec.workloads.1.callers.0"
EGRESS = "spec.workloads.1.egress.0"
KEY = "spec.certificates.privateKey"


def external(cidr: str) -> Mutation:
    return put(EGRESS, {"cidr": cidr, "ports": [443]})


# (mutation, field the error must name, fragment of the error message)
INVALID = [
    # the document and its required parts
    pytest.param(drop("spec"), "spec", "Required value", id="spec-missing"),
    pytest.param(drop("spec.workloads"), "spec.workloads", "Required value", id="workloads-missing"),
    pytest.param(put("spec.workloads", []), "spec.workloads", "at least 1 items", id="workloads-empty"),
    pytest.param(
        put("spec.workloads", many_workloads(33)), "spec.workloads", "at most 32", id="workloads-too-many"
    ),
    pytest.param(drop("spec.certificates"), "spec.certificates", "Required value", id="certificates-missing"),
    # names
    pytest.param(put("metadata.name", "check.out"), "metadata.name", "should match", id="name-with-dot"),
    pytest.param(
        put("metadata.name", "c" * 50), "spec.workloads[1].name", "63 characters", id="child-name-too-long"
    ),
    pytest.param(
        put(f"{GATEWAY}.name", "API"), "spec.workloads[0].name", "should match", id="workload-uppercase"
    ),
    pytest.param(
        put(f"{GATEWAY}.name", "a" * 62), "spec.workloads[0].name", "more than 61", id="workload-name-long"
    ),
    pytest.param(
        put(f"{ORDER}.name", "api-gateway"), "spec.workloads[1]", "Duplicate value", id="workload-duplicate"
    ),
    # enums and the trust domain
    pytest.param(put("spec.pciScope", "pan"), "spec.pciScope", "Unsupported value", id="pci-scope"),
    pytest.param(
        put("spec.enforcement", "enforce"), "spec.enforcement", "Unsupported value", id="enforcement"
    ),
    pytest.param(
        put("spec.driftPolicy", "Ignore"), "spec.driftPolicy", "Unsupported value", id="drift-policy"
    ),
    pytest.param(
        put("spec.trustDomain", "cluster.local/ns/x"), "spec.trustDomain", "DNS name", id="trust-slash"
    ),
    pytest.param(put("spec.trustDomain", "spiffe://td"), "spec.trustDomain", "DNS name", id="trust-scheme"),
    pytest.param(put("spec.trustDomain", "*.local"), "spec.trustDomain", "DNS name", id="trust-wildcard"),
    # selectors
    pytest.param(
        drop(f"{GATEWAY}.selector"), "spec.workloads[0].selector", "Required value", id="selector-missing"
    ),
    pytest.param(
        put(f"{GATEWAY}.selector", {}), "spec.workloads[0].selector", "at least 1", id="selector-empty"
    ),
    pytest.param(
        put(f"{GATEWAY}.selector", {"app name": "x"}),
        "spec.workloads[0].selector",
        "label key",
        id="selector-bad-key",
    ),
    pytest.param(
        put(f"{GATEWAY}.selector", {"app": ""}),
        "spec.workloads[0].selector.app",
        "at least 1 chars",
        id="selector-empty-value",
    ),
    pytest.param(
        put(f"{GATEWAY}.selector", {"app": "a b"}),
        "spec.workloads[0].selector.app",
        "should match",
        id="selector-bad-value",
    ),
    pytest.param(
        put(f"{GATEWAY}.selector", {f"k{i}": "v" for i in range(9)}),
        "spec.workloads[0].selector",
        "at most 8",
        id="selector-too-many-labels",
    ),
    pytest.param(
        put(f"{GATEWAY}.selector", {"app": "order-service", "tier": "edge"}),
        "spec.workloads[1].selector",
        "api-gateway",
        id="selectors-nest",
    ),
    # service accounts
    pytest.param(
        drop(f"{GATEWAY}.serviceAccount"),
        "spec.workloads[0].serviceAccount",
        "Required value",
        id="service-account-missing",
    ),
    pytest.param(
        put(f"{GATEWAY}.serviceAccount", "default"),
        "spec.workloads[0].serviceAccount",
        '"default"',
        id="service-account-default",
    ),
    pytest.param(
        put(f"{GATEWAY}.serviceAccount", "Gateway"),
        "spec.workloads[0].serviceAccount",
        "should match",
        id="service-account-uppercase",
    ),
    pytest.param(
        put(f"{ORDER}.serviceAccount", "api-gateway"),
        "spec.workloads[1].serviceAccount",
        "own identity",
        id="service-account-shared",
    ),
    # ports
    pytest.param(
        put(f"{ORDER}.ports.0.port", 0),
        "spec.workloads[1].ports[0].port",
        "greater than or equal to 1",
        id="port-zero",
    ),
    pytest.param(
        put(f"{ORDER}.ports.0.port", 65536),
        "spec.workloads[1].ports[0].port",
        "less than or equal to 65535",
        id="port-too-high",
    ),
    pytest.param(
        put(f"{ORDER}.ports.0.port", 15000),
        "spec.workloads[1].ports[0].port",
        "Istio sidecar",
        id="port-istio-reserved",
    ),
    pytest.param(
        put(f"{ORDER}.ports.0.protocol", "HTTP"),
        "spec.workloads[1].ports[0].protocol",
        "Unsupported value",
        id="port-protocol",
    ),
    pytest.param(
        put(f"{ORDER}.ports", [{"name": "a", "port": 8443}, {"name": "b", "port": 8443}]),
        "spec.workloads[1].ports[1]",
        "Duplicate value",
        id="port-duplicate",
    ),
    pytest.param(
        put(f"{ORDER}.ports", [{"name": "a", "port": 8443}, {"name": "a", "port": 9443}]),
        "spec.workloads[1].ports",
        "unique",
        id="port-name-duplicate",
    ),
    pytest.param(
        put(f"{ORDER}.ports.0.name", "8443"),
        "spec.workloads[1].ports[0].name",
        "letter",
        id="port-name-digits",
    ),
    pytest.param(
        put(f"{ORDER}.ports.0.name", "https-for-callers"),
        "spec.workloads[1].ports[0].name",
        "more than 15",
        id="port-name-long",
    ),
    pytest.param(
        put(f"{ORDER}.ports", [{"name": f"p{i}", "port": 8000 + i} for i in range(9)]),
        "spec.workloads[1].ports",
        "at most 8",
        id="ports-too-many",
    ),
    # callers
    pytest.param(
        put(CALLER, {"ports": [8443]}), "spec.workloads[1].callers[0]", "exactly one", id="caller-neither"
    ),
    pytest.param(
        put(f"{CALLER}.principal", {"namespace": "edge", "serviceAccount": "gw"}),
        "spec.workloads[1].callers[0]",
        "exactly one",
        id="caller-both",
    ),
    pytest.param(
        put(f"{CALLER}.workload", "ghost"),
        "spec.workloads[1].callers[0].workload",
        '"ghost"',
        id="caller-unknown-workload",
    ),
    pytest.param(
        put(f"{CALLER}.workload", "order-service"),
        "spec.workloads[1].callers[0].workload",
        "itself",
        id="caller-self",
    ),
    pytest.param(
        put(f"{CALLER}.ports", [9443]),
        "spec.workloads[1].callers[0].ports",
        "port 9443",
        id="caller-port-undeclared",
    ),
    pytest.param(drop(f"{ORDER}.ports"), "spec.workloads[1].ports", "callers", id="callers-without-ports"),
    pytest.param(
        put(CALLER, {"principal": {"namespace": "*", "serviceAccount": "gw"}}),
        "spec.workloads[1].callers[0].principal.namespace",
        "should match",
        id="principal-wildcard-ns",
    ),
    pytest.param(
        put(CALLER, {"principal": {"namespace": "edge", "serviceAccount": "*"}}),
        "spec.workloads[1].callers[0].principal.serviceAccount",
        "should match",
        id="principal-wildcard-sa",
    ),
    pytest.param(
        put(CALLER, {"principal": {"namespace": "edge", "serviceAccount": "default"}}),
        "spec.workloads[1].callers[0].principal.serviceAccount",
        '"default"',
        id="principal-default-sa",
    ),
    pytest.param(
        put(CALLER, {"principal": {"namespace": "edge", "serviceAccount": "gw", "selector": {}}}),
        "spec.workloads[1].callers[0].principal.selector",
        "should have at least 1 properties",
        id="principal-selector-empty",
    ),
    pytest.param(
        put(CALLER, {"principal": {"namespace": "edge", "serviceAccount": "gw", "selector": {"app": "a b"}}}),
        "spec.workloads[1].callers[0].principal.selector.app",
        "should match",
        id="principal-selector-bad-value",
    ),
    pytest.param(
        put(CALLER, {"principal": {"namespace": "edge", "serviceAccount": "gw", "selector": {"-x": "a"}}}),
        "spec.workloads[1].callers[0].principal.selector",
        "label key",
        id="principal-selector-bad-key",
    ),
    pytest.param(
        put(
            CALLER,
            {
                "principal": {
                    "namespace": "edge",
                    "serviceAccount": "gw",
                    "namespaceLabels": {"kubernetes.io/metadata.name": "other"},
                }
            },
        ),
        "spec.workloads[1].callers[0].principal.namespaceLabels",
        "must not set kubernetes.io/metadata.name",
        id="principal-namespace-labels-rename",
    ),
    pytest.param(
        put(CALLER, {"principal": {"serviceAccount": "gw"}}),
        "spec.workloads[1].callers[0].principal.namespace",
        "Required value",
        id="principal-no-namespace",
    ),
    pytest.param(
        put(f"{CALLER}.methods", ["TRACE"]),
        "spec.workloads[1].callers[0].methods[0]",
        "Unsupported value",
        id="method-trace",
    ),
    pytest.param(
        put(f"{CALLER}.methods", ["post"]),
        "spec.workloads[1].callers[0].methods[0]",
        "Unsupported value",
        id="method-lowercase",
    ),
    pytest.param(
        put(f"{CALLER}.methods", ["POST", "POST"]),
        "spec.workloads[1].callers[0].methods[1]",
        "Duplicate value",
        id="method-duplicate",
    ),
    pytest.param(
        put(f"{CALLER}.paths", ["v1/orders"]),
        "spec.workloads[1].callers[0].paths[0]",
        "start with '/'",
        id="path-relative",
    ),
    pytest.param(
        put(f"{CALLER}.paths", ["*"]),
        "spec.workloads[1].callers[0].paths[0]",
        "start with '/'",
        id="path-star-alone",
    ),
    pytest.param(
        put(f"{CALLER}.paths", ["/v1/*/refunds"]),
        "spec.workloads[1].callers[0].paths[0]",
        "last character",
        id="path-inner-star",
    ),
    pytest.param(
        put(f"{CALLER}.paths", ["/v1/orders?admin=true"]),
        "spec.workloads[1].callers[0].paths[0]",
        "no query",
        id="path-query",
    ),
    pytest.param(
        put(f"{CALLER}.paths", ["/v1/../admin"]),
        "spec.workloads[1].callers[0].paths[0]",
        "normalized",
        id="path-dot-dot",
    ),
    pytest.param(
        put(f"{CALLER}.paths", ["/v1//orders"]),
        "spec.workloads[1].callers[0].paths[0]",
        "normalized",
        id="path-double-slash",
    ),
    pytest.param(
        put(f"{CALLER}.paths", ["/" + "a" * 256]),
        "spec.workloads[1].callers[0].paths[0]",
        "more than 256",
        id="path-too-long",
    ),
    pytest.param(
        put(f"{CALLER}.paths", [f"/v{i}" for i in range(9)]),
        "spec.workloads[1].callers[0].paths",
        "at most 8",
        id="paths-too-many",
    ),
    pytest.param(
        put(f"{ORDER}.callers", [{"workload": "api-gateway"}] * 33),
        "spec.workloads[1].callers",
        "at most 32",
        id="callers-too-many",
    ),
    # egress
    pytest.param(
        put(EGRESS, {"ports": [443]}), "spec.workloads[1].egress[0]", "exactly one", id="egress-neither"
    ),
    pytest.param(
        put(f"{EGRESS}.workload", "api-gateway"),
        "spec.workloads[1].egress[0]",
        "exactly one",
        id="egress-both",
    ),
    pytest.param(
        put(f"{GATEWAY}.egress.0.workload", "ghost"),
        "spec.workloads[0].egress[0].workload",
        '"ghost"',
        id="egress-unknown-workload",
    ),
    pytest.param(
        put(f"{GATEWAY}.egress.0.workload", "api-gateway"),
        "spec.workloads[0].egress[0].workload",
        "itself",
        id="egress-self",
    ),
    pytest.param(
        put(f"{GATEWAY}.egress.0.ports", [9443]),
        "spec.workloads[0].egress[0].ports",
        "order-service",
        id="egress-port-undeclared-by-target",
    ),
    pytest.param(
        drop(f"{EGRESS}.ports"),
        "spec.workloads[1].egress[0].ports",
        "required with cidr",
        id="egress-cidr-without-ports",
    ),
    pytest.param(
        external("0.0.0.0/0"), "spec.workloads[1].egress[0].cidr", "too broad", id="cidr-everything-v4"
    ),
    pytest.param(external("::/0"), "spec.workloads[1].egress[0].cidr", "too broad", id="cidr-everything-v6"),
    pytest.param(external("10.0.0.0/8"), "spec.workloads[1].egress[0].cidr", "too broad", id="cidr-slash-8"),
    pytest.param(
        external("2001:db8::/32"), "spec.workloads[1].egress[0].cidr", "too broad", id="cidr-v6-slash-32"
    ),
    pytest.param(
        external("203.0.113.7/24"), "spec.workloads[1].egress[0].cidr", "203.0.113.0/24", id="cidr-host-bits"
    ),
    pytest.param(
        external("203.0.113.7"), "spec.workloads[1].egress[0].cidr", "CIDR notation", id="cidr-bare-ip"
    ),
    pytest.param(
        external("processor.example.com"),
        "spec.workloads[1].egress[0].cidr",
        "CIDR notation",
        id="cidr-hostname",
    ),
    pytest.param(
        external("169.254.169.254/32"), "spec.workloads[1].egress[0].cidr", "link-local", id="cidr-metadata"
    ),
    pytest.param(
        external("127.0.0.0/16"), "spec.workloads[1].egress[0].cidr", "loopback", id="cidr-loopback"
    ),
    pytest.param(
        external("224.0.0.0/16"), "spec.workloads[1].egress[0].cidr", "multicast", id="cidr-multicast"
    ),
    pytest.param(
        external("168.63.0.0/16"),
        "spec.workloads[1].egress[0].cidr",
        "instance-metadata",
        id="cidr-azure-wireserver",
    ),
    pytest.param(
        put(f"{ORDER}.egress", [{"cidr": f"203.0.{i}.0/24", "ports": [443]} for i in range(17)]),
        "spec.workloads[1].egress",
        "at most 16",
        id="egress-too-many",
    ),
    # certificates
    pytest.param(
        put("spec.certificates", {}), "spec.certificates.issuerRef", "Required value", id="issuer-missing"
    ),
    pytest.param(
        put("spec.certificates.issuerRef.kind", "Vault"),
        "spec.certificates.issuerRef.kind",
        "Unsupported value",
        id="issuer-kind",
    ),
    pytest.param(
        put("spec.certificates.duration", "25h"),
        "spec.certificates.duration",
        "between 1h and 24h",
        id="duration-too-long",
    ),
    pytest.param(
        put("spec.certificates.duration", "30m"),
        "spec.certificates.duration",
        "between 1h and 24h",
        id="duration-too-short",
    ),
    pytest.param(
        put("spec.certificates.duration", "1d"),
        "spec.certificates.duration",
        "hours, minutes",
        id="duration-in-days",
    ),
    pytest.param(
        put("spec.certificates.renewBefore", "24h"),
        "spec.certificates.renewBefore",
        "shorter than duration",
        id="renew-before-not-shorter",
    ),
    pytest.param(
        put("spec.certificates.renewBefore", "1m"),
        "spec.certificates.renewBefore",
        "at least 5m",
        id="renew-before-too-short",
    ),
    pytest.param(
        put(KEY, {"algorithm": "RSA", "size": 2048}),
        "spec.certificates.privateKey.size",
        "3072 or 4096",
        id="key-rsa-2048",
    ),
    pytest.param(
        put(KEY, {"algorithm": "RSA", "size": 256}),
        "spec.certificates.privateKey.size",
        "3072 or 4096",
        id="key-rsa-256",
    ),
    pytest.param(
        put(KEY, {"algorithm": "ECDSA", "size": 4096}),
        "spec.certificates.privateKey.size",
        "256 or 384",
        id="key-ecdsa-4096",
    ),
    pytest.param(
        put(KEY, {"algorithm": "Ed25519", "size": 256}),
        "spec.certificates.privateKey.size",
        "omitted",
        id="key-ed25519-size",
    ),
    pytest.param(
        put(KEY, {"algorithm": "DSA"}),
        "spec.certificates.privateKey.algorithm",
        "Unsupported value",
        id="key-dsa",
    ),
    pytest.param(
        put(f"{KEY}.rotationPolicy", "Never"),
        "spec.certificates.privateKey.rotationPolicy",
        "Unsupported value",
        id="key-rotation-never",
    ),
]


@pytest.fixture(scope="module")
def shared_namespace(cluster: TestCluster) -> Iterator[str]:
    """One namespace for the whole table: rejected manifests leave nothing behind."""
    name = cluster.create_namespace("crd")
    yield name
    cluster.delete_namespace(name)


def rejection(cluster: TestCluster, body: dict[str, Any], namespace: str) -> list[str]:
    """Submits the manifest both ways kubectl can, and returns the admission causes as `field: message`.

    `kubectl create` (and client-side apply) reach schema and CEL validation and get a 422 listing every
    cause. Server-side apply refuses too, but some structural mistakes (a duplicate list-map key) fail it
    earlier, while building the typed patch, with a less specific status; it only has to refuse.
    """
    resource = cluster.resource(API_VERSION, "PaymentService")
    with pytest.raises(ApiException) as applied:
        cluster.apply(body, namespace=namespace)
    assert applied.value.status in (422, 500), applied.value.body
    with pytest.raises(ApiException) as created:
        resource.create(body=body, namespace=namespace)
    assert created.value.status == 422, created.value.body
    status = json.loads(created.value.body)
    causes = status.get("details", {}).get("causes") or [{"field": "", "message": status["message"]}]
    return [f"{cause.get('field', '')}: {cause['message']}" for cause in causes]


def test_the_valid_manifest_is_accepted(cluster: TestCluster, shared_namespace: str) -> None:
    live = cluster.apply(valid_manifest(), namespace=shared_namespace)
    assert live.spec.workloads[1].name == "order-service"
    cluster.resource(API_VERSION, "PaymentService").delete(name="checkout", namespace=shared_namespace)


@pytest.mark.parametrize(("mutation", "field", "fragment"), INVALID)
def test_invalid_manifest_is_rejected_naming_the_field(
    cluster: TestCluster, shared_namespace: str, mutation: Mutation, field: str, fragment: str
) -> None:
    body = valid_manifest()
    mutation(body)

    causes = rejection(cluster, body, shared_namespace)

    assert any(field in cause and fragment in cause for cause in causes), "\n".join(causes)


@pytest.mark.parametrize(("mutation", "field", "fragment"), INVALID)
def test_the_model_refuses_what_the_api_server_refuses(mutation: Mutation, field: str, fragment: str) -> None:
    body = valid_manifest()
    body["metadata"]["namespace"] = "payments"
    parse_payment_service(body)
    mutation(body)
    with pytest.raises(InvalidSpec):
        parse_payment_service(body)


def test_misspelt_field_is_rejected_not_ignored(cluster: TestCluster, shared_namespace: str) -> None:
    body = valid_manifest()
    body["spec"]["enforcment"] = (
        "Audit"  # silently ignored, this would leave the operator enforcing by default
    )

    with pytest.raises(ApiException) as raised:
        cluster.apply(body, namespace=shared_namespace)

    # Server-side apply refuses fields missing from the schema before admission, hence not a 422.
    assert ".spec.enforcment: field not declared in schema" in raised.value.body
    with pytest.raises(InvalidSpec) as refused:
        parse_payment_service(body)
    assert refused.value.path == "spec.enforcment"


def test_the_invalid_table_is_large_enough() -> None:
    assert len(INVALID) >= 40


def test_api_server_defaults_match_the_model_defaults(cluster: TestCluster, shared_namespace: str) -> None:
    minimal = {
        "apiVersion": API_VERSION,
        "kind": "PaymentService",
        "metadata": {"name": "defaults", "namespace": shared_namespace},
        "spec": {
            "workloads": [
                {
                    "name": "w",
                    "selector": {"app": "w"},
                    "serviceAccount": "w",
                    "ports": [{"name": "h", "port": 80}],
                }
            ],
            "certificates": {"issuerRef": {"name": "ca"}},
        },
    }
    live = cluster.apply(minimal).to_dict()
    spec = live["spec"]

    assert (spec["pciScope"], spec["enforcement"], spec["driftPolicy"]) == ("cde", "Enforce", "Revert")
    assert spec["trustDomain"] == "cluster.local"
    assert spec["workloads"][0]["ports"][0]["protocol"] == "TCP"
    assert spec["certificates"] == {
        "issuerRef": {"name": "ca", "kind": "Issuer", "group": "cert-manager.io"},
        "duration": "24h",
        "renewBefore": "8h",
        "privateKey": {"algorithm": "ECDSA", "rotationPolicy": "Always"},
    }
    from_server, from_file = parse_payment_service(live), parse_payment_service(minimal)
    assert (from_server.workloads, from_server.certificates) == (from_file.workloads, from_file.certificates)
    assert (from_server.pci_scope, from_server.trust_domain) == (from_file.pci_scope, from_file.trust_domain)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_is_accepted(cluster: TestCluster, namespace: str, path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    body["metadata"]["namespace"] = namespace

    live = cluster.apply(body).to_dict()

    assert live["metadata"]["namespace"] == namespace
    assert [w["name"] for w in live["spec"]["workloads"]] == [w["name"] for w in body["spec"]["workloads"]]
    # What the server stored (with its defaults) means the same as the file to the operator.
    assert (
        parse_payment_service(live).workloads
        == parse_payment_service({**body, "metadata": live["metadata"]}).workloads
    )


# --- printer columns, names, status ---------------------------------------------------------------------


def served_crd(cluster: TestCluster) -> Any:
    return client.ApiextensionsV1Api(cluster.api_client).read_custom_resource_definition(
        "paymentservices.payguard.dev"
    )


def test_crd_serves_the_printer_columns_on_call_reads(cluster: TestCluster) -> None:
    (version,) = served_crd(cluster).spec.versions
    columns = {column.name: column for column in version.additional_printer_columns}

    assert list(columns) == [
        "Ready",
        "mTLS",
        "Certs",
        "Drift",
        "Workloads",
        "Mesh",
        "Enforcement",
        "Scope",
        "Age",
    ]
    assert columns["Ready"].json_path == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["mTLS"].json_path == '.status.conditions[?(@.type=="MTLSStrict")].status'
    assert columns["Certs"].json_path == '.status.conditions[?(@.type=="CertificatesReady")].status'
    assert columns["Drift"].json_path == '.status.conditions[?(@.type=="InSync")].reason'
    assert columns["Workloads"].json_path == ".status.workloadCount"
    assert columns["Mesh"].json_path == '.status.conditions[?(@.type=="MeshEnrolled")].status'
    assert columns["Mesh"].priority == columns["Enforcement"].priority == 1


def test_short_name_and_category_are_served(cluster: TestCluster) -> None:
    names = served_crd(cluster).spec.names
    assert names.short_names == ["paysvc"]
    assert names.categories == ["payguard"]
    resources = client.CustomObjectsApi(cluster.api_client).get_api_resources("payguard.dev", "v1alpha1")
    (resource,) = [r for r in resources.resources if r.name == "paymentservices"]
    assert resource.namespaced
    assert resource.short_names == ["paysvc"]


def apply_example(cluster: TestCluster, file_name: str, *, namespace: str) -> Any:
    body = yaml.safe_load((REPO / "examples" / file_name).read_text())
    body["metadata"]["namespace"] = namespace
    return cluster.apply(body)


def condition(kind: str, status: str, reason: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": "",
        "observedGeneration": 1,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def write_status(cluster: TestCluster, *, name: str, namespace: str, status: dict[str, Any]) -> Any:
    return client.CustomObjectsApi(cluster.api_client).patch_namespaced_custom_object_status(
        "payguard.dev", "v1alpha1", namespace, "paymentservices", name, {"status": status}
    )


def test_kubectl_get_table_shows_readiness_from_status(cluster: TestCluster, namespace: str) -> None:
    body = yaml.safe_load((REPO / "examples" / "checkout.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    cluster.apply(body)
    write_status(
        cluster,
        name="checkout",
        namespace=namespace,
        status={
            "observedGeneration": 1,
            "workloadCount": 4,
            "conditions": [
                condition("Ready", "True", "AllControlsHold"),
                condition("MTLSStrict", "True", "Strict"),
                condition("CertificatesReady", "False", "ExpiringSoon"),
                condition("InSync", "True", "NoDrift"),
                condition("MeshEnrolled", "False", "PodsOutsideMesh"),
            ],
        },
    )

    table = (
        cluster.resource(API_VERSION, "PaymentService")
        .get(namespace=namespace, header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        .to_dict()
    )

    headers = [column["name"] for column in table["columnDefinitions"]]
    (row,) = table["rows"]
    cells = dict(zip(headers, row["cells"], strict=True))
    assert headers[:8] == ["Name", "Ready", "mTLS", "Certs", "Drift", "Workloads", "Mesh", "Enforcement"]
    assert (cells["Name"], cells["Ready"], cells["mTLS"], cells["Certs"]) == (
        "checkout",
        "True",
        "True",
        "False",
    )
    assert (cells["Drift"], cells["Workloads"], cells["Mesh"], cells["Enforcement"]) == (
        "NoDrift",
        4,
        "False",
        "Enforce",
    )


def test_status_schema_refuses_a_condition_with_an_unknown_status(
    cluster: TestCluster, namespace: str
) -> None:
    apply_example(cluster, "minimal.yaml", namespace=namespace)
    with pytest.raises(ApiException) as raised:
        write_status(
            cluster,
            name="key-rotation",
            namespace=namespace,
            status={"conditions": [condition("Ready", "Maybe", "Guessing")]},
        )
    assert raised.value.status == 422
    assert "status.conditions[0].status" in raised.value.body


def test_status_keeps_per_workload_certificate_summaries(cluster: TestCluster, namespace: str) -> None:
    apply_example(cluster, "minimal.yaml", namespace=namespace)
    summary = {
        "name": "rotator",
        "mtls": "STRICT",
        "authorization": "Enforced",
        "network": "Isolated",
        "certificate": {
            "name": "key-rotation-rotator",
            "state": "Ready",
            "notAfter": "2026-01-02T00:00:00Z",
            "renewalTime": "2026-01-01T16:00:00Z",
            "serialNumber": "0a1b2c",
            "keyAlgorithm": "ECDSA",
            "keySize": 256,
        },
        "unknownField": "pruned",
    }

    live = write_status(cluster, name="key-rotation", namespace=namespace, status={"workloads": [summary]})

    stored = live["status"]["workloads"][0]
    assert stored["certificate"] == summary["certificate"]
    assert "unknownField" not in stored  # the status schema is explicit, not preserve-unknown-fields
