"""Ambient truth table: for every example, rendered for an ambient namespace with a waypoint, the independent
NetworkPolicy evaluator (tests/netpol_eval.py) admits every declared flow as it travels in ambient mode
(HBONE on 15008, directly or through the waypoint), kubelet's probes from 169.254.7.127 and the platform
essentials, and denies undeclared flows: other pods, other pairs, other ports, other namespaces, outside
addresses, and the waypoint on anything but HBONE.

Each side is judged by its own NetworkPolicy: the target's admits every declared caller, the source's lets
out every declared egress (a pair declared on one side only is the manifest's business, not payguard's).
HBONE opens a declared pair, not a port: which port the tunnel carries is checked by ztunnel's policy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from netpol_eval import AMBIENT_PROBE_SOURCE, HBONE_PORT, Flow, Mode, Network, Pod
from payguard.dataplane import dataplanes
from payguard.model import PaymentService
from payguard.render import render_children
from payguard.settings import Platform
from payguard.spec import parse_payment_service

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
WAYPOINT_LABELS = {"gateway.networking.k8s.io/gateway-name": "waypoint"}
OUTSIDE = ("8.8.8.8", "192.0.2.10")  # public addresses no example declares


@dataclass
class Table:
    service: PaymentService
    network: Network
    pods: dict[str, Pod]  # workload name -> its pod
    callers: dict[tuple[str, int], Pod]  # (workload, caller index) -> the caller's pod
    waypoint: Pod
    intruders: tuple[Pod, ...]
    dns: Pod
    istiod: Pod
    policies: dict[str, dict[str, Any]]  # workload name -> its NetworkPolicy


def addresses() -> Iterator[str]:
    for host in ipaddress.ip_network("10.244.0.0/16").hosts():
        yield str(host)


def build(example: Path) -> Table:
    body = yaml.safe_load(example.read_text())
    body["metadata"]["uid"] = "u1"
    service = parse_payment_service(body)
    if service.enforcement.value == "Audit":
        pytest.skip(f"{example.name} is enforcement: Audit: it renders no NetworkPolicy to evaluate")
    ns = service.namespace
    planes = dataplanes(
        service,
        namespace={
            "metadata": {
                "name": ns,
                "labels": {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"},
            }
        },
        pods=[],
        services=[
            {"metadata": {"name": w.name}, "spec": {"selector": w.match_labels}} for w in service.workloads
        ],
    )
    children = render_children(service, platform=Platform(), dataplanes=planes)
    policies = {
        c["metadata"]["labels"]["payguard.dev/workload"]: c for c in children if c["kind"] == "NetworkPolicy"
    }
    ips = addresses()
    pods = {w.name: Pod(w.name, ns, next(ips), w.match_labels) for w in service.workloads}
    callers: dict[tuple[str, int], Pod] = {}
    for w in service.workloads:
        for index, caller in enumerate(w.callers):
            if caller.workload is not None:
                callers[(w.name, index)] = pods[caller.workload]
            else:
                assert caller.principal is not None
                name = f"{caller.principal.service_account}-0"
                callers[(w.name, index)] = Pod(name, caller.principal.namespace, next(ips), {"app": name})
    intruders = (
        Pod("intruder", ns, next(ips), {"app": "intruder"}),
        Pod("stranger", "elsewhere", next(ips), {"app": "stranger"}),
    )
    return Table(
        service=service,
        network=Network(namespaces={}, policies=list(policies.values())),
        pods=pods,
        callers=callers,
        waypoint=Pod("waypoint-0", ns, next(ips), WAYPOINT_LABELS),
        intruders=intruders,
        dns=Pod("coredns", "kube-system", next(ips), {"k8s-app": "kube-dns"}, meshed=False),
        istiod=Pod("istiod", "istio-system", next(ips), {"app": "istiod"}, meshed=False),
        policies=policies,
    )


def only(table: Table, *workloads: str) -> Network:
    """The network with only these workloads' NetworkPolicies: one side's verdict on its own."""
    return Network(namespaces={}, policies=[table.policies[w] for w in workloads])


# --- allowed ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_declared_caller_is_admitted_over_hbone_directly_and_through_the_waypoint(
    example: Path,
) -> None:
    table = build(example)
    for workload in table.service.workloads:
        target = table.pods[workload.name]
        ingress = only(table, workload.name)
        for index, caller in enumerate(workload.callers):
            source = table.callers[(workload.name, index)]
            for port in caller.ports or workload.port_numbers():
                direct = ingress.allows(Flow(source, target, port), mode=Mode.AMBIENT)
                assert direct, f"{source} -> {workload.name}:{port} over HBONE: {direct}"
                # a source outside the mesh still speaks to the application port
                plain = ingress.evaluate(Flow(source, target, port))
                assert plain, f"{source} -> {workload.name}:{port} in plaintext: {plain}"
        if workload.callers:
            hop = ingress.evaluate(Flow(table.waypoint, target, HBONE_PORT))
            assert hop, f"waypoint -> {workload.name}:{HBONE_PORT}: {hop}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_declared_egress_leaves_over_hbone_to_the_target_and_to_its_waypoint(example: Path) -> None:
    table = build(example)
    for workload in table.service.workloads:
        source = table.pods[workload.name]
        egress = only(table, workload.name)
        for rule in workload.egress:
            if rule.workload is None:
                assert rule.cidr is not None
                address = str(next(rule.cidr.hosts()))
                for port in rule.ports:
                    verdict = egress.allows(Flow(source, address, port), mode=Mode.AMBIENT)
                    assert verdict, f"{workload.name} -> {address}:{port}: {verdict}"
                continue
            target = table.pods[rule.workload]
            for port in rule.ports or table.service.workload(rule.workload).port_numbers():
                verdict = egress.allows(Flow(source, target, port), mode=Mode.AMBIENT)
                assert verdict, f"{workload.name} -> {rule.workload}:{port} over HBONE: {verdict}"
            to_waypoint = egress.evaluate(Flow(source, table.waypoint, HBONE_PORT))
            assert to_waypoint, f"{workload.name} -> waypoint:{HBONE_PORT}: {to_waypoint}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_kubelet_probes_and_platform_essentials_pass_for_every_workload(example: Path) -> None:
    table = build(example)
    for workload in table.service.workloads:
        pod = table.pods[workload.name]
        for port in workload.port_numbers():
            probe = table.network.allows(Flow(AMBIENT_PROBE_SOURCE, pod, port), mode=Mode.AMBIENT)
            assert probe, f"probe -> {workload.name}:{port}: {probe}"
        for flow in (
            Flow(pod, table.dns, 53, "UDP"),
            Flow(pod, table.dns, 53),
            Flow(pod, table.istiod, 15012),
        ):
            verdict = table.network.allows(flow, mode=Mode.AMBIENT)
            assert verdict, f"{flow}: {verdict}"


# --- denied ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_undeclared_pods_pairs_ports_and_addresses_are_denied(example: Path) -> None:
    table = build(example)
    for workload in table.service.workloads:
        pod = table.pods[workload.name]
        ingress = only(table, workload.name)
        ports = (*workload.port_numbers(), HBONE_PORT, 22)
        for intruder in table.intruders:
            for port in ports:
                verdict = ingress.evaluate(Flow(intruder, pod, port))
                assert not verdict, f"{intruder} -> {workload.name}:{port}: {verdict}"
            out = ingress.evaluate(Flow(pod, intruder, HBONE_PORT))
            assert not out, f"{workload.name} -> {intruder}:{HBONE_PORT}: {out}"
        declared_callers = {c.workload for c in workload.callers if c.workload}
        for other in table.service.workloads:
            if other.name == workload.name or other.name in declared_callers:
                continue
            for port in ports:
                verdict = ingress.evaluate(Flow(table.pods[other.name], pod, port))
                assert not verdict, f"undeclared {other.name} -> {workload.name}:{port}: {verdict}"
        for address in OUTSIDE:
            for port in (443, HBONE_PORT):
                verdict = ingress.evaluate(Flow(pod, address, port))
                assert not verdict, f"{workload.name} -> {address}:{port}: {verdict}"
        probe = ingress.evaluate(Flow(AMBIENT_PROBE_SOURCE, pod, 22))
        assert not probe, f"probe source -> {workload.name}:22 (undeclared port): {probe}"
        for port in workload.port_numbers():
            app = ingress.evaluate(Flow(table.waypoint, pod, port))
            assert not app, f"waypoint -> {workload.name}:{port} outside HBONE: {app}"
        if not workload.callers:
            hop = ingress.evaluate(Flow(table.waypoint, pod, HBONE_PORT))
            assert not hop, f"waypoint -> {workload.name} without callers: {hop}"
