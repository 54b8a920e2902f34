"""A traffic truth table for one PaymentService on one platform: a small world of pods around it, the flows
its spec declares (and the platform essentials), which must pass, and undeclared flows, which must not.

The world is built from the typed spec and the platform only; the verdicts come from `netpol_eval`
over the NetworkPolicies payguard renders, so the table checks the renderer against the spec's meaning.
`Row.mode` is the data plane the flow travels in (sidecar here; ambient rows reuse the same world).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from netpol_eval import ContainerPort, Endpoint, Flow, Mode, Network, Pod
from payguard.model import Caller, PaymentService, Workload
from payguard.platform import Destination, Platform, ServicePort
from payguard.render import render_children

# Addresses no example declares: the wider internet, as seen by an egress rule.
OUTSIDE = {4: "192.0.2.77", 6: "2001:db8:ffff::1"}
UNUSED_PORT = 9999  # no example serves it


@dataclass(frozen=True)
class Row:
    why: str
    flow: Flow
    mode: Mode = Mode.SIDECAR


@dataclass
class TrafficTable:
    network: Network
    allowed: list[Row] = field(default_factory=list)
    denied: list[Row] = field(default_factory=list)

    def wrong(self) -> list[str]:
        """Every row whose verdict is not the expected one, with the evaluator's reasons."""
        return [
            f"expected {expected}: {row.why}: {row.flow} ({verdict})"
            for expected, rows in (("allowed", self.allowed), ("denied", self.denied))
            for row in rows
            if bool(verdict := self.network.allows(row.flow, mode=row.mode)) != (expected == "allowed")
        ]


class _World:
    """Pods with addresses from 10.244.0.0/16, namespaces with labels."""

    def __init__(self) -> None:
        self._addresses = (str(ipaddress.ip_address("10.244.0.10") + i) for i in itertools.count())
        self.namespaces: dict[str, dict[str, str]] = {}

    def pod(
        self,
        name: str,
        namespace: str,
        labels: dict[str, str],
        *,
        ports: Sequence[ContainerPort] = (),
        meshed: bool = True,
    ) -> Pod:
        self.namespaces.setdefault(namespace, {})
        return Pod(name, namespace, next(self._addresses), labels, tuple(ports), meshed)


def traffic_table(service: PaymentService, platform: Platform, *, mode: Mode = Mode.SIDECAR) -> TrafficTable:
    return _Builder(service, platform, mode).build()


class _Builder:
    def __init__(self, service: PaymentService, platform: Platform, mode: Mode) -> None:
        self.service, self.platform, self.mode = service, platform, mode
        self.world = _World()
        self.pods = {
            w.name: self.world.pod(
                f"{w.name}-0", service.namespace, w.match_labels, ports=_container_ports(w)
            )
            for w in service.workloads
        }
        policies = [c for c in render_children(service, platform=platform) if c["kind"] == "NetworkPolicy"]
        self.table = TrafficTable(Network(self.world.namespaces, policies))

    def expect(
        self, allowed: bool, why: str, source: Endpoint, target: Endpoint, port: int, protocol: str
    ) -> None:
        rows = self.table.allowed if allowed else self.table.denied
        rows.append(Row(why, Flow(source, target, port, protocol), self.mode))

    def build(self) -> TrafficTable:
        stranger = self.world.pod("stranger", self.service.namespace, {"app": "stranger"})
        essentials = [
            (e.name, list(_destinations(self.world, e.destinations)), e.ports)
            for e in self.platform.essentials()
        ]
        for workload in self.service.workloads:
            self._ingress(workload, stranger)
            for index, caller in enumerate(workload.callers):
                self._caller(workload, index, caller)
            self._between_workloads(workload)
            self._egress(workload)
            for name, destinations, ports in essentials:
                self._essential(workload, name, destinations, ports)
        return self.table

    def _ingress(self, workload: Workload, stranger: Pod) -> None:
        target = self.pods[workload.name]
        # A pod with the same labels in another namespace: pod selectors are namespace-scoped.
        twin = self.world.pod(f"{workload.name}-twin", "elsewhere", workload.match_labels)
        self.expect(
            False, f"a pod calls {workload.name} on an unused port", stranger, target, UNUSED_PORT, "TCP"
        )
        for port, protocol in _served(workload):
            admitted = _admits_by_identity(self.world, workload, stranger, port)
            self.expect(
                admitted, f"an undeclared pod calls {workload.name}", stranger, target, port, protocol
            )
            self.expect(False, f"a look-alike elsewhere calls {workload.name}", twin, target, port, protocol)
            self.expect(False, f"the internet calls {workload.name}", OUTSIDE[4], target, port, protocol)

    def _caller(self, workload: Workload, index: int, caller: Caller) -> None:
        target = self.pods[workload.name]
        ports = [(p, proto) for p, proto in _served(workload) if not caller.ports or p in caller.ports]
        if caller.workload is not None:
            source = self.pods[caller.workload]
            declared = _declared_pairs(self.service.workload(caller.workload), workload)
            for port, protocol in ports:
                # Both owners declare an in-service flow: the target its caller, the source its egress.
                why = f"{caller.workload} calls {workload.name} (callers[{index}])"
                self.expect((port, protocol) in declared, why, source, target, port, protocol)
            return
        assert caller.principal is not None
        namespace, account = caller.principal.namespace, caller.principal.service_account
        self.world.namespaces.setdefault(namespace, {}).update(dict(caller.namespace_labels))
        labels = dict(caller.pod_selector) or {"app": account}
        source = self.world.pod(f"{account}-0", namespace, labels)
        bystander = self.world.pod(f"bystander-of-{index}", namespace, {"app": "bystander"})
        narrowed = "with" if caller.pod_selector else "without"
        for port, protocol in ports:
            self.expect(
                True, f"principal {namespace}/{account} (callers[{index}])", source, target, port, protocol
            )
            # Without a pod selector L3 admits the namespace (L7 checks the identity); with one, its pods.
            admitted = _admits_by_identity(self.world, workload, bystander, port)
            why = f"a bystander in {namespace} (callers[{index}] {narrowed} selector)"
            self.expect(admitted, why, bystander, target, port, protocol)

    def _between_workloads(self, workload: Workload) -> None:
        source = self.pods[workload.name]
        for other in self.service.workloads:
            if other is workload:
                continue  # a pod calling itself never leaves it
            target = self.pods[other.name]
            declared = _declared_pairs(workload, other)
            for port, protocol in _served(other):
                if (port, protocol) not in declared:
                    self.expect(
                        False,
                        f"{workload.name} calls {other.name} undeclared",
                        source,
                        target,
                        port,
                        protocol,
                    )
            self.expect(
                False,
                f"{workload.name} calls {other.name} on an unused port",
                source,
                target,
                UNUSED_PORT,
                "TCP",
            )

    def _egress(self, workload: Workload) -> None:
        source = self.pods[workload.name]
        for rule in workload.egress:
            if rule.cidr is None:
                continue
            inside = str(rule.cidr.network_address + 1)
            for port in rule.ports:
                self.expect(True, f"{workload.name} egress to {rule.cidr}", source, inside, port, "TCP")
            self.expect(
                False, f"{workload.name} to {rule.cidr}, undeclared port", source, inside, UNUSED_PORT, "TCP"
            )
        for version, address in OUTSIDE.items():
            self.expect(
                False, f"{workload.name} to an undeclared IPv{version} address", source, address, 443, "TCP"
            )

    def _essential(
        self, workload: Workload, name: str, destinations: list[Endpoint], ports: Sequence[ServicePort]
    ) -> None:
        source = self.pods[workload.name]
        for destination in destinations:
            for item in ports:
                self.expect(
                    True, f"{workload.name} reaches the {name}", source, destination, item.port, item.protocol
                )
            self.expect(
                False, f"{workload.name} to the {name}, unused port", source, destination, UNUSED_PORT, "TCP"
            )
        # Another pod next to the essential, on the essential's own port: not an essential.
        for namespace in sorted({d.namespace for d in destinations if isinstance(d, Pod)}):
            neighbour = self.world.pod(
                f"next-to-{workload.name}", namespace, {"app": "neighbour"}, meshed=False
            )
            for item in ports:
                why = f"{workload.name} to a non-{name} pod in {namespace}"
                self.expect(False, why, source, neighbour, item.port, item.protocol)


def _admits_by_identity(world: _World, workload: Workload, pod: Pod, port: int) -> bool:
    """What the spec means at L3 for a pod outside the service's workloads: some principal caller of its
    namespace admits it, by its pod selector if it names one, else the whole namespace."""
    namespace_labels = {
        **world.namespaces.get(pod.namespace, {}),
        "kubernetes.io/metadata.name": pod.namespace,
    }
    return any(
        caller.principal is not None
        and caller.principal.namespace == pod.namespace
        and dict(caller.namespace_labels).items() <= namespace_labels.items()
        and dict(caller.pod_selector).items() <= dict(pod.labels).items()
        and (not caller.ports or port in caller.ports)
        for caller in workload.callers
    )


def _declared_pairs(source: Workload, target: Workload) -> set[tuple[int, str]]:
    """The (port, protocol) pairs `source` declares as egress to `target` and `target` admits from it."""
    served = _served(target)
    egress = {
        (port, protocol)
        for rule in source.egress
        if rule.workload == target.name
        for port, protocol in served
        if not rule.ports or port in rule.ports
    }
    admitted = {
        (port, protocol)
        for caller in target.callers
        if caller.workload == source.name
        for port, protocol in served
        if not caller.ports or port in caller.ports
    }
    return egress & admitted


def _served(workload: Workload) -> list[tuple[int, str]]:
    return [(port.port, str(port.protocol)) for port in workload.ports]


def _container_ports(workload: Workload) -> list[ContainerPort]:
    return [ContainerPort(port.name, port.port, str(port.protocol)) for port in workload.ports]


def _destinations(world: _World, destinations: Sequence[Destination]) -> Iterator[Endpoint]:
    for destination in destinations:
        if destination.cidr:
            yield str(ipaddress.ip_network(destination.cidr).network_address)
        else:
            name = f"{destination.namespace}-essential"
            yield world.pod(name, destination.namespace, dict(destination.pod_labels), meshed=False)
