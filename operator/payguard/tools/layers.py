"""Owns the per-layer verdicts of `payguard explain` (pure): may this caller reach this workload on this
port (and method, path), at NetworkPolicy L3/L4, at mTLS and at AuthorizationPolicy L7, and which object
and rule decides. Reads plain object dicts, as the API serves them or as `render` prints them."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from payguard.kinds import DRY_RUN_ANNOTATION, NAMESPACE_NAME_LABEL
from payguard.model import PaymentService, Workload
from payguard.posture.mtls import STRICT, effective_mtls
from payguard.posture.objects import (
    is_being_deleted,
    mapping,
    mappings,
    metadata_of,
    namespace_of,
    reference_of,
    selector_matches,
    sequence,
    spec_of,
)

ALLOWED = "allowed"
DENIED = "denied"


@dataclass(frozen=True)
class Caller:
    """Who calls: pods with known labels in a namespace, a mesh principal, or plaintext from a network."""

    text: str
    namespace: str | None = None
    labels: Mapping[str, str] | None = None  # None: the caller's pod labels are unknown
    principal: str | None = None  # `<trustDomain>/ns/<ns>/sa/<sa>`; None: no mesh identity (plaintext)
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None


@dataclass(frozen=True)
class Request:
    port: int
    method: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class LayerVerdict:
    layer: str
    verdict: str
    decided_by: str
    why: str


def network_layer(
    policies: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    target: Workload,
    caller: Caller,
    request: Request,
) -> LayerVerdict:
    """NetworkPolicies add up: denied once one selects the pods for Ingress, unless some rule admits."""
    layer = "network (L3/L4)"
    isolating = [
        policy
        for policy in policies
        if namespace_of(policy) == namespace
        and not is_being_deleted(policy)
        and "Ingress" in _policy_types(policy)
        and selector_matches(mapping(spec_of(policy).get("podSelector")), target.match_labels)
    ]
    if not isolating:
        return LayerVerdict(layer, ALLOWED, "-", "no NetworkPolicy selects the workload for ingress")
    for policy in sorted(isolating, key=_name):
        for index, rule in enumerate(mappings(spec_of(policy).get("ingress"))):
            if _ports_admit(rule, request.port) and _peers_admit(rule, caller, namespace=namespace):
                reference = reference_of("NetworkPolicy", policy)
                return LayerVerdict(
                    layer, ALLOWED, f"{reference} ingress[{index}]", "a rule admits the caller"
                )
    names = ", ".join(reference_of("NetworkPolicy", p) for p in isolating)
    return LayerVerdict(layer, DENIED, names, f"no ingress rule admits {caller.text} on port {request.port}")


def _name(policy: Mapping[str, Any]) -> str:
    return str(metadata_of(policy).get("name", ""))


def _policy_types(policy: Mapping[str, Any]) -> Sequence[Any]:
    declared = sequence(spec_of(policy).get("policyTypes"))
    return declared or ["Ingress"]


def _ports_admit(rule: Mapping[str, Any], port: int) -> bool:
    ports = mappings(rule.get("ports"))
    if not ports:
        return True
    for entry in ports:
        protocol = entry.get("protocol", "TCP")
        first, last = entry.get("port"), entry.get("endPort")
        if protocol != "TCP":
            continue
        if (
            first is None
            or first == port
            or (isinstance(first, int) and isinstance(last, int) and first <= port <= last)
        ):
            return True
    return False


def _peers_admit(rule: Mapping[str, Any], caller: Caller, *, namespace: str) -> bool:
    peers = mappings(rule.get("from"))
    if "from" not in rule:
        return True
    return any(_peer_admits(peer, caller, namespace=namespace) for peer in peers)


def _peer_admits(peer: Mapping[str, Any], caller: Caller, *, namespace: str) -> bool:
    if "ipBlock" in peer:
        return _block_admits(mapping(peer["ipBlock"]), caller)
    if caller.namespace is None:
        return False
    namespaces = peer.get("namespaceSelector")
    if namespaces is None:
        in_namespace = caller.namespace == namespace
    else:
        in_namespace = selector_matches(mapping(namespaces), {NAMESPACE_NAME_LABEL: caller.namespace})
    pods = peer.get("podSelector")
    if not in_namespace:
        return False
    if not mapping(pods):
        return True
    return caller.labels is not None and selector_matches(mapping(pods), caller.labels)


def _block_admits(block: Mapping[str, Any], caller: Caller) -> bool:
    """Only a network caller is matched by ipBlock here; pods are matched by their selectors."""
    network = caller.network
    if network is None:
        return False
    try:
        allowed = ipaddress.ip_network(str(block.get("cidr")), strict=False)
        excepted = [ipaddress.ip_network(str(e), strict=False) for e in sequence(block.get("except"))]
    except ValueError:
        return False
    if network.version != allowed.version or not network.subnet_of(allowed):  # type: ignore[arg-type]
        return False
    return not any(network.version == e.version and network.overlaps(e) for e in excepted)


def mtls_layer(
    service: PaymentService,
    peer_authentications: Sequence[Mapping[str, Any]],
    *,
    target: Workload,
    caller: Caller,
    mesh_root_namespace: str,
) -> LayerVerdict:
    """STRICT refuses plaintext: a caller with no mesh identity is denied there."""
    (posture,) = [
        p
        for p in effective_mtls(service, peer_authentications, mesh_root_namespace=mesh_root_namespace)
        if p.workload == target.name
    ]
    decided_by = posture.decided_by or "Istio default"
    if posture.mode == STRICT and caller.principal is None:
        return LayerVerdict("mTLS", DENIED, decided_by, f"{posture.detail}; {caller.text} sends plaintext")
    return LayerVerdict("mTLS", ALLOWED, decided_by, posture.detail)


def authorization_layer(
    policies: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    target: Workload,
    caller: Caller,
    request: Request,
    mesh_root_namespace: str,
) -> LayerVerdict:
    """Istio's order: a matching DENY denies; then if any ALLOW applies, one of its rules must match."""
    layer = "authorization (L7)"
    applying = [
        p for p in policies if _applies(p, namespace, target, mesh_root_namespace) and not _dry_run(p)
    ]
    for policy in sorted(applying, key=_name):
        if spec_of(policy).get("action") == "DENY":
            index = _matching_rule(policy, caller, request)
            if index is not None:
                return LayerVerdict(layer, DENIED, _rule_ref(policy, index), "a DENY rule matches")
    allows = [p for p in applying if spec_of(p).get("action", "ALLOW") == "ALLOW"]
    if not allows:
        return LayerVerdict(layer, ALLOWED, "-", "no ALLOW AuthorizationPolicy applies to the workload")
    for policy in sorted(allows, key=_name):
        index = _matching_rule(policy, caller, request)
        if index is not None:
            return LayerVerdict(layer, ALLOWED, _rule_ref(policy, index), "an ALLOW rule matches the request")
    names = ", ".join(reference_of("AuthorizationPolicy", p) for p in allows)
    return LayerVerdict(layer, DENIED, names, f"no ALLOW rule matches {_request_text(caller, request)}")


def _rule_ref(policy: Mapping[str, Any], index: int) -> str:
    return f"{reference_of('AuthorizationPolicy', policy)} rules[{index}]"


def _request_text(caller: Caller, request: Request) -> str:
    parts = [caller.principal or f"{caller.text} (no principal)", f"port {request.port}"]
    if request.method:
        parts.append(request.method)
    if request.path:
        parts.append(request.path)
    return " ".join(parts)


def _dry_run(policy: Mapping[str, Any]) -> bool:
    return mapping(metadata_of(policy).get("annotations")).get(DRY_RUN_ANNOTATION) in ("true", "True", "1")


def _applies(policy: Mapping[str, Any], namespace: str, target: Workload, root: str) -> bool:
    if is_being_deleted(policy):
        return False
    spec = spec_of(policy)
    if spec.get("targetRefs") or spec.get("targetRef"):
        return False  # bound to a Gateway, Service or waypoint, never to the workload's own proxy
    selector = mapping(spec.get("selector"))
    where = namespace_of(policy)
    if where == root and root != namespace:
        return not mapping(selector.get("matchLabels"))
    return where == namespace and selector_matches(selector, target.match_labels)


def _matching_rule(policy: Mapping[str, Any], caller: Caller, request: Request) -> int | None:
    for index, rule in enumerate(mappings(spec_of(policy).get("rules"))):
        if _sources_match(rule, caller) and _operations_match(rule, request):
            return index
    return None


def _sources_match(rule: Mapping[str, Any], caller: Caller) -> bool:
    froms = mappings(rule.get("from"))
    if not froms:
        return True
    for entry in froms:
        source = mapping(entry.get("source"))
        principals = [str(p) for p in sequence(source.get("principals"))]
        namespaces = [str(n) for n in sequence(source.get("namespaces"))]
        if principals and not (caller.principal and any(_glob(p, caller.principal) for p in principals)):
            continue
        if namespaces and not (caller.principal and caller.namespace and caller.namespace in namespaces):
            continue
        return True
    return False


def _operations_match(rule: Mapping[str, Any], request: Request) -> bool:
    tos = mappings(rule.get("to"))
    if not tos:
        return True
    for entry in tos:
        operation = mapping(entry.get("operation"))
        ports = [str(p) for p in sequence(operation.get("ports"))]
        methods = [str(m) for m in sequence(operation.get("methods"))]
        paths = [str(p) for p in sequence(operation.get("paths"))]
        if ports and str(request.port) not in ports:
            continue
        if methods and (request.method is None or request.method.upper() not in methods):
            continue
        if paths and (request.path is None or not any(_glob(p, request.path) for p in paths)):
            continue
        return True
    return False


def _glob(pattern: str, value: str) -> bool:
    """Istio's string match: exact, `prefix*`, `*suffix` or `*`."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern
