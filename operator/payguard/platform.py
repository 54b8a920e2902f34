"""Owns the platform: the essentials every workload must reach (cluster DNS, the mesh control plane, a
separate mesh CA) so default-deny never locks it out, the cluster's own networks, and how their flag
values are read and checked.

Destinations are pods (a namespace and pod labels) or an address block, such as NodeLocal DNSCache's
link-local 169.254.20.10 that no PaymentService may name itself. Parse errors are `PlatformError`s whose
message names the value; the command line adds the flag, the chart's schema the value's path.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance-metadata endpoints hand out node credentials: neither a spec nor the platform may reach them.
METADATA_ADDRESSES = tuple(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
# A platform address block wider than this is a typo, not a DNS server or a CA.
MIN_DESTINATION_PREFIX = {4: 16, 6: 48}
PROTOCOLS = ("UDP", "TCP", "SCTP")  # the order ports are rendered in

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


class PlatformError(ValueError):
    """A platform value payguard refuses; the message names the value and what is expected."""


@dataclass(frozen=True)
class Destination:
    """Pods (`namespace` and `pod_labels`) or an address block (`cidr`); exactly one of the two."""

    namespace: str = ""
    pod_labels: Labels = ()
    cidr: str = ""

    def __post_init__(self) -> None:
        if bool(self.cidr) == bool(self.namespace) or bool(self.namespace) != bool(self.pod_labels):
            raise PlatformError(f"a destination is pods (namespace and labels) or an address, got {self!r}")

    def __str__(self) -> str:
        if self.cidr:
            return self.cidr
        return f"{self.namespace}/" + ",".join(f"{key}={value}" for key, value in self.pod_labels)


@dataclass(frozen=True)
class ServicePort:
    port: int
    protocol: str = "TCP"

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Essential:
    """One thing every workload must reach: where it runs and on which ports."""

    name: str
    destinations: tuple[Destination, ...]
    ports: tuple[ServicePort, ...]


KUBE_DNS = Destination("kube-system", (("k8s-app", "kube-dns"),))
ISTIOD = Destination("istio-system", (("app", "istiod"),))
DNS_PORTS = (ServicePort(53, "UDP"), ServicePort(53, "TCP"))
ISTIOD_PORTS = (ServicePort(15012, "TCP"),)  # xDS and certificate signing


@dataclass(frozen=True)
class Platform:
    """Where the essentials live, and the cluster's networks (which egress CIDRs must not overlap)."""

    dns: tuple[Destination, ...] = (KUBE_DNS,)
    dns_ports: tuple[ServicePort, ...] = DNS_PORTS
    mesh: tuple[Destination, ...] = (ISTIOD,)
    mesh_ports: tuple[ServicePort, ...] = ISTIOD_PORTS
    mesh_ca: tuple[Destination, ...] = ()  # empty: istiod signs the workload certificates itself
    mesh_ca_ports: tuple[ServicePort, ...] = ()
    pod_cidrs: tuple[Network, ...] = ()
    service_cidrs: tuple[Network, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.mesh_ca) != bool(self.mesh_ca_ports):
            raise PlatformError("a mesh CA needs both its destinations and its ports")
        for name, destinations, ports in (
            ("cluster DNS", self.dns, self.dns_ports),
            ("mesh control plane", self.mesh, self.mesh_ports),
        ):
            if not destinations or not ports:
                raise PlatformError(f"the {name} needs at least one destination and one port")

    def essentials(self) -> tuple[Essential, ...]:
        """In render order: DNS, the control plane, then a separate CA if there is one."""
        found = [
            Essential("cluster DNS", self.dns, self.dns_ports),
            Essential("mesh control plane", self.mesh, self.mesh_ports),
        ]
        if self.mesh_ca:
            found.append(Essential("mesh CA", self.mesh_ca, self.mesh_ca_ports))
        return tuple(found)

    def cluster_networks(self) -> tuple[tuple[str, Network], ...]:
        """The pod and service networks, each with the flag that set it (for InvalidSpec messages)."""
        return (
            *(("--pod-cidr", network) for network in self.pod_cidrs),
            *(("--service-cidr", network) for network in self.service_cidrs),
        )


def parse_destination(text: str) -> Destination:
    """`NAMESPACE/KEY=VALUE[,KEY=VALUE]` (pods) or `IP[/PREFIX]` (an address block, e.g. 169.254.20.10)."""
    text = text.strip()
    if _looks_like_address(text):
        return Destination(cidr=str(parse_network(text, host_ok=True)))
    namespace, slash, labels = text.partition("/")
    if not slash or not labels:
        raise PlatformError(
            f"{text!r} is neither NAMESPACE/KEY=VALUE[,KEY=VALUE] (pods) nor an IP address or CIDR"
        )
    if not _NAMESPACE.fullmatch(namespace):
        raise PlatformError(f"{namespace!r} in {text!r} is not a namespace name (a DNS-1123 label)")
    return Destination(namespace=namespace, pod_labels=parse_labels(labels))


def parse_labels(text: str) -> Labels:
    """`k8s-app=kube-dns,tier=dns` -> sorted (key, value) pairs; every pair must be a valid label."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, equals, value = item.partition("=")
        if not equals or not _LABEL_KEY.fullmatch(key) or len(key.rpartition("/")[2]) > 63:
            raise PlatformError(f"{item!r} is not a KEY=VALUE label")
        if not _LABEL_VALUE.fullmatch(value):
            raise PlatformError(f"{value!r} is not a label value (at most 63 letters, digits, - _ .)")
        pairs.append((key, value))
    if not pairs:
        raise PlatformError(f"{text!r} names no labels: an empty selector would match every pod")
    if len({key for key, _ in pairs}) != len(pairs):
        raise PlatformError(f"{text!r} names a label key twice")
    return tuple(sorted(pairs))


def parse_ports(text: str, *, default_protocols: tuple[str, ...]) -> tuple[ServicePort, ...]:
    """`53` (each default protocol) or `53/UDP` (that protocol only)."""
    number, slash, protocol = text.strip().partition("/")
    try:
        port = int(number)
    except ValueError:
        raise PlatformError(f"{text!r} is not PORT or PORT/PROTOCOL") from None
    if not 1 <= port <= 65535:
        raise PlatformError(f"port {port} is out of range 1-65535")
    if slash and protocol.upper() not in PROTOCOLS:
        raise PlatformError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    protocols = (protocol.upper(),) if slash else default_protocols
    return tuple(ServicePort(port, p) for p in protocols)


def parse_network(text: str, *, host_ok: bool = False) -> Network:
    """An address block; `host_ok` reads a bare address as a /32 or /128 (a platform destination)."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        raise PlatformError(f"{text!r} is not a network in CIDR notation with no host bits set") from None
    if "/" not in text and not host_ok:
        raise PlatformError(f"{text!r} is not in CIDR notation (ADDRESS/PREFIX)")
    if host_ok:
        if network.prefixlen < MIN_DESTINATION_PREFIX[network.version]:
            raise PlatformError(
                f"{text} is too broad for a destination: /{MIN_DESTINATION_PREFIX[network.version]} at most"
            )
        if any(m in network for m in METADATA_ADDRESSES if m.version == network.version):
            raise PlatformError(f"{text} includes a cloud instance-metadata address")
    return network


def ports_text(ports: tuple[ServicePort, ...]) -> str:
    """`53/UDP,TCP` style: how the call graph and help texts show an essential's ports."""
    by_port: dict[int, list[str]] = {}
    for item in ports:
        by_port.setdefault(item.port, []).append(item.protocol)
    return " ".join(f"{port}/{','.join(protocols)}" for port, protocols in by_port.items())


def _looks_like_address(text: str) -> bool:
    head = text.partition("/")[0]
    try:
        ipaddress.ip_address(head)
    except ValueError:
        return False
    return True
