"""Owns what Istio ambient mode changes in a workload's controls (pure): HBONE and kubelet-probe allowances
in its NetworkPolicy, and its L7 caller rules moved from ztunnel to a policy bound to its waypoint.

ztunnel enforces only L4 (principals, ports), so a caller rule with methods or paths can be enforced only by
a waypoint, through a policy with `targetRefs` (Istio turns a selector policy with L7 rules that ztunnel
would enforce into a DENY). Traffic that passed a waypoint reaches the workload's ztunnel as the waypoint's
identity, so the workload's L4 policy admits the waypoint on the callers' ports, the waypoint's policy checks
every caller, and L7 callers stay out of the direct rules: one that skips the waypoint meets no rule.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from payguard.dataplane import HBONE_PORT, PROBE_SOURCE_CIDR, Dataplanes, Waypoint, WorkloadDataplane
from payguard.kinds import NAMESPACE_NAME_LABEL
from payguard.model import Caller, PaymentService, Protocol, Workload
from payguard.render.istio import authorization_policy
from payguard.render.metadata import Manifest

WAYPOINT_POLICY_SUFFIX = "-waypoint"  # <paymentservice>-<workload>-waypoint: the L7 policy's name
_HBONE = {"port": HBONE_PORT, "protocol": "TCP"}


def has_l7_rules(caller: Caller) -> bool:
    return bool(caller.methods or caller.paths)


def ambient_authorization_policies(
    service: PaymentService, workload: Workload, plane: WorkloadDataplane, *, dry_run: bool
) -> list[Manifest]:
    """The ztunnel (selector) policy, and when a waypoint serves the workload, the waypoint's (targetRefs)
    first.

    A waypoint with no policy bound to it forwards everything, and ztunnel sees only the waypoint's
    identity: so once ztunnel admits the waypoint, the waypoint must check every caller itself.
    """
    direct = replace(workload, callers=tuple(c for c in workload.callers if not has_l7_rules(c)))
    if not plane.waypoint_services or not workload.callers:
        # Without a waypoint nothing can enforce L7 rules: those callers are left out (denied) and the
        # judge says why. Without callers ztunnel admits nobody, the waypoint neither.
        return [authorization_policy(service, direct, dry_run=dry_run)]
    ztunnel = authorization_policy(service, direct, dry_run=dry_run)
    ztunnel["spec"].setdefault("rules", []).append(_from_waypoints(service, workload, plane.waypoints))
    waypoint = authorization_policy(service, workload, dry_run=dry_run)
    spec = {key: value for key, value in waypoint["spec"].items() if key != "selector"}
    targets = [{"group": "", "kind": "Service", "name": name} for name in plane.service_names]
    waypoint["spec"] = {"targetRefs": targets, **spec}
    waypoint["metadata"]["name"] += WAYPOINT_POLICY_SUFFIX
    # Applied in this order: the waypoint checks callers before ztunnel starts admitting the waypoint.
    return [waypoint, ztunnel]


def _from_waypoints(
    service: PaymentService, workload: Workload, waypoints: tuple[Waypoint, ...]
) -> dict[str, Any]:
    principals = [waypoint.principal(service.trust_domain) for waypoint in waypoints]
    ports = sorted({port for c in workload.callers for port in (c.ports or workload.port_numbers())})
    rule: dict[str, Any] = {"from": [{"source": {"principals": principals}}]}
    if ports:
        rule["to"] = [{"operation": {"ports": [str(port) for port in ports]}}]
    return rule


def ambient_network_policy(
    manifest: Manifest, service: PaymentService, workload: Workload, planes: Dataplanes
) -> Manifest:
    """The workload's NetworkPolicy with what ambient needs: HBONE (15008) between every declared pair
    where either side is ambient, from its waypoints, to its targets' waypoints, and kubelet's probes."""
    own = planes.of(workload.name)
    if not own.ambient and not _peers_ambient(workload, planes):
        return manifest
    spec = copy.deepcopy(manifest["spec"])
    # network_policy renders one ingress rule per caller and the declared egress first, in spec order.
    ingress: list[dict[str, Any]] = spec.get("ingress", [])
    for rule, caller in zip(ingress, workload.callers, strict=True):
        if own.ambient or (caller.workload is not None and planes.of(caller.workload).ambient):
            _add_hbone(rule)
    if own.ambient:
        if workload.callers:  # callers reach it through its waypoints too; with none, nobody does
            ingress += [{"from": [_pods_of(w)], "ports": [dict(_HBONE)]} for w in own.waypoints]
        probe_ports = [
            {"port": port.port, "protocol": "TCP"}
            for port in sorted(workload.ports, key=lambda p: p.port)
            if port.protocol is Protocol.TCP
        ]
        if probe_ports:
            ingress.append({"from": [{"ipBlock": {"cidr": PROBE_SOURCE_CIDR}}], "ports": probe_ports})
    if ingress:
        spec["ingress"] = ingress
    declared = spec["egress"][: len(workload.egress)]
    to_waypoints: list[dict[str, Any]] = []
    for rule, target in zip(declared, workload.egress, strict=True):
        if target.workload is None:
            continue
        plane = planes.of(target.workload)
        if own.ambient or plane.ambient:
            _add_hbone(rule)
        for waypoint in plane.waypoints:
            item = {"to": [_pods_of(waypoint)], "ports": [dict(_HBONE)]}
            if item not in to_waypoints:
                to_waypoints.append(item)
    spec["egress"] = [*declared, *to_waypoints, *spec["egress"][len(workload.egress) :]]
    return {**manifest, "spec": spec}


def _peers_ambient(workload: Workload, planes: Dataplanes) -> bool:
    peers = [c.workload for c in workload.callers] + [e.workload for e in workload.egress]
    return any(planes.of(peer).ambient for peer in peers if peer is not None)


def _add_hbone(rule: dict[str, Any]) -> None:
    """A rule without ports already admits every port; one with ports gains HBONE's."""
    if "ports" in rule and _HBONE not in rule["ports"]:
        rule["ports"].append(dict(_HBONE))


def _pods_of(waypoint: Waypoint) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: waypoint.namespace}},
        "podSelector": {"matchLabels": waypoint.pod_labels},
    }
