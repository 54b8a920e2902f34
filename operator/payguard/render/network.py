"""Owns a workload's NetworkPolicy: deny both ways but declared callers, targets and platform essentials."""

from __future__ import annotations

from typing import Any

from payguard.kinds import NAMESPACE_NAME_LABEL
from payguard.model import Caller, EgressRule, PaymentService, Workload
from payguard.platform import Destination, Platform
from payguard.render.metadata import ChildKind, Manifest, child_manifest


def network_policy(service: PaymentService, workload: Workload, *, platform: Platform) -> Manifest:
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": workload.match_labels},
        "policyTypes": ["Ingress", "Egress"],
    }
    # Empty lists are omitted: the API server drops them, and keeping them would read as drift.
    ingress = [_ingress_rule(service, workload, caller) for caller in workload.callers]
    if ingress:
        spec["ingress"] = ingress
    spec["egress"] = [
        *(_egress_rule(service, rule) for rule in workload.egress),
        *_essential_egress(platform),
    ]
    return child_manifest(ChildKind.NETWORK_POLICY, service, workload, spec=spec)


def _ingress_rule(service: PaymentService, workload: Workload, caller: Caller) -> dict[str, Any]:
    if caller.workload is not None:
        peer = {"podSelector": {"matchLabels": service.workload(caller.workload).match_labels}}
    else:
        # A principal is a ServiceAccount, which L3 cannot see: admit its pods when the spec names them,
        # else its whole namespace, and let the AuthorizationPolicy check the exact identity at L7.
        assert caller.principal is not None
        namespace = {NAMESPACE_NAME_LABEL: caller.principal.namespace, **dict(caller.namespace_labels)}
        peer = {"namespaceSelector": {"matchLabels": namespace}}
        if caller.pod_selector:
            peer["podSelector"] = {"matchLabels": dict(caller.pod_selector)}
    rule: dict[str, Any] = {"from": [peer]}
    ports = _ports(workload, caller.ports or workload.port_numbers())
    if ports:
        rule["ports"] = ports
    return rule


def _egress_rule(service: PaymentService, rule: EgressRule) -> dict[str, Any]:
    if rule.workload is not None:
        target = service.workload(rule.workload)
        peer: dict[str, Any] = {"podSelector": {"matchLabels": target.match_labels}}
        ports = _ports(target, rule.ports or target.port_numbers())
    else:
        assert rule.cidr is not None
        peer = {"ipBlock": {"cidr": str(rule.cidr)}}
        ports = [{"port": port, "protocol": "TCP"} for port in rule.ports]
    egress: dict[str, Any] = {"to": [peer]}
    if ports:
        egress["ports"] = ports
    return egress


def _essential_egress(platform: Platform) -> list[dict[str, Any]]:
    return [
        {
            "to": [_destination(destination) for destination in essential.destinations],
            "ports": [{"port": item.port, "protocol": item.protocol} for item in essential.ports],
        }
        for essential in platform.essentials()
    ]


def _destination(destination: Destination) -> dict[str, Any]:
    if destination.cidr:
        return {"ipBlock": {"cidr": destination.cidr}}
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: destination.namespace}},
        "podSelector": {"matchLabels": dict(destination.pod_labels)},
    }


def _ports(workload: Workload, numbers: tuple[int, ...]) -> list[dict[str, Any]]:
    """Each declared (port, protocol) of these numbers; explicit, as a defaulted protocol reads as drift."""
    declared = {(port.port, str(port.protocol)) for port in workload.ports}
    ports = []
    for number in numbers:
        protocols = sorted(
            {protocol for (port, protocol) in declared if port == number}, key=_PROTOCOL_ORDER.index
        )
        ports += [{"port": number, "protocol": protocol} for protocol in protocols or ["TCP"]]
    return ports


_PROTOCOL_ORDER = ["UDP", "TCP", "SCTP"]
