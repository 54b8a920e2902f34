"""An independent evaluator of Kubernetes NetworkPolicy semantics (networking.k8s.io/v1), for truth tables.

Written from the API reference, not from payguard's renderer, so a test can ask "does this flow pass?"
of the policies payguard renders and of hand-written ones alike:

- A pod is isolated for a direction when a policy of its namespace selects it and lists that direction
  in `policyTypes` (absent: Ingress, plus Egress when the policy has `egress`). An isolated pod admits
  only what some rule of some selecting policy allows; policies are additive, never subtractive.
- A flow between two pods passes when the source's egress AND the destination's ingress allow it.
  An external address (a plain IP string) has no policies of its own.
- Peers: `ipBlock` (cidr minus `except`) matches by address, pods included (whether a CNI applies
  ipBlocks to pod addresses varies, so the truth table assumes the wider reading); `podSelector` alone
  means pods of the policy's namespace; `namespaceSelector` alone every pod of matching namespaces; both
  together the matching pods of the matching namespaces. An empty or absent `from`/`to` matches anyone.
- Ports: `protocol` defaults to TCP; no `port` means every port of that protocol; `endPort` makes a
  range; a named port resolves against the destination pod's container ports. Empty or absent `ports`
  matches every port and protocol.
- Label selectors: `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist); `{}` selects
  everything. Namespaces carry `kubernetes.io/metadata.name` as the API server sets it.

Not modelled: traffic from a pod's own node (conforming CNIs always allow it, so the tables never rely
on it), hostNetwork pods, and connection tracking of replies (a reply is always allowed).

`Mode` names the data plane: a flow between applications is what the NetworkPolicy sees only in sidecar
mode; `WIRE` maps an application flow to the packets on the wire per mode (one row per mode).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
HBONE_PORT = 15008  # ztunnel's tunnel port in Istio ambient mode
AMBIENT_PROBE_SOURCE = "169.254.7.127"  # where kubelet probes to ambient pods come from


@dataclass(frozen=True)
class ContainerPort:
    """A port a container declares; NetworkPolicy named ports resolve against these."""

    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    ip: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    ports: tuple[ContainerPort, ...] = ()
    meshed: bool = True  # in the mesh's data plane (sidecar or ztunnel); DNS and istiod are not

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


Endpoint = Pod | str  # a pod, or an address outside the cluster's pods


@dataclass(frozen=True)
class Flow:
    """One connection attempt: source to destination on a port and protocol."""

    source: Endpoint
    destination: Endpoint
    port: int
    protocol: str = "TCP"

    def __str__(self) -> str:
        return f"{self.source} -> {self.destination}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Verdict:
    """Whether a flow passes, and why each side decided as it did (for readable test failures)."""

    allowed: bool
    egress: str
    ingress: str

    def __bool__(self) -> bool:
        return self.allowed

    def __str__(self) -> str:
        return f"{'allowed' if self.allowed else 'denied'} (egress: {self.egress}; ingress: {self.ingress})"


class Mode(StrEnum):
    SIDECAR = "sidecar"
    AMBIENT = "ambient"


def _sidecar_wire(flow: Flow) -> Flow:
    # The sidecar intercepts inside the pod and connects to the destination's own port.
    return flow


def _ambient_wire(flow: Flow) -> Flow:
    # ztunnel tunnels meshed-to-meshed TCP over HBONE to the destination pod's port 15008.
    source, destination = flow.source, flow.destination
    if not (isinstance(source, Pod) and isinstance(destination, Pod)):
        return flow
    if source.meshed and destination.meshed and flow.protocol == "TCP":
        return replace(flow, port=HBONE_PORT)
    return flow


# The packet a NetworkPolicy sees for an application flow, per data-plane mode.
WIRE: dict[Mode, Callable[[Flow], Flow]] = {
    Mode.SIDECAR: _sidecar_wire,
    Mode.AMBIENT: _ambient_wire,
}


@dataclass(frozen=True)
class Network:
    """Namespaces (name -> labels) and NetworkPolicies (as dicts, the way the API server holds them)."""

    namespaces: Mapping[str, Mapping[str, str]] = field(default_factory=dict, hash=False)
    policies: Sequence[Mapping[str, Any]] = ()

    def allows(self, flow: Flow, *, mode: Mode = Mode.SIDECAR) -> Verdict:
        """Whether the application flow passes in this data-plane mode."""
        return self.evaluate(WIRE[mode](flow))

    def evaluate(self, flow: Flow) -> Verdict:
        """Whether this packet passes: the source's egress and the destination's ingress."""
        egress = self._side(flow, selected=flow.source, peer=flow.destination, direction="Egress")
        ingress = self._side(flow, selected=flow.destination, peer=flow.source, direction="Ingress")
        return Verdict(allowed=egress[0] and ingress[0], egress=egress[1], ingress=ingress[1])

    def namespace_labels(self, name: str) -> dict[str, str]:
        return {**self.namespaces.get(name, {}), NAMESPACE_NAME_LABEL: name}

    def _side(self, flow: Flow, *, selected: Endpoint, peer: Endpoint, direction: str) -> tuple[bool, str]:
        if not isinstance(selected, Pod):
            return True, "external address, no policy"
        isolating = [p for p in self.policies if _isolates(p, selected, direction)]
        if not isolating:
            return True, f"{selected} not isolated for {direction}"
        key = "egress" if direction == "Egress" else "ingress"
        peers_key = "to" if direction == "Egress" else "from"
        for policy in isolating:
            namespace = policy["metadata"]["namespace"]
            for index, rule in enumerate(policy.get("spec", {}).get(key) or []):
                peers = rule.get(peers_key) or []
                peer_ok = not peers or any(self._peer_matches(p, namespace, peer) for p in peers)
                if peer_ok and _ports_match(rule.get("ports") or [], flow):
                    return True, f"allowed by {namespace}/{policy['metadata']['name']} {key}[{index}]"
        names = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in isolating)
        return False, f"{selected} isolated for {direction} by {names}, no rule matches"

    def _peer_matches(self, peer: Mapping[str, Any], policy_namespace: str, endpoint: Endpoint) -> bool:
        if "ipBlock" in peer:
            address = endpoint.ip if isinstance(endpoint, Pod) else endpoint
            return _in_block(address, peer["ipBlock"])
        if "podSelector" not in peer and "namespaceSelector" not in peer:
            raise ValueError(f"a NetworkPolicy peer needs ipBlock, podSelector or namespaceSelector: {peer}")
        if not isinstance(endpoint, Pod):
            return False  # selectors select pods, never outside addresses
        if "namespaceSelector" in peer:
            namespace_ok = selects(peer["namespaceSelector"], self.namespace_labels(endpoint.namespace))
        else:
            namespace_ok = endpoint.namespace == policy_namespace
        return namespace_ok and selects(peer.get("podSelector") or {}, endpoint.labels)


def _isolates(policy: Mapping[str, Any], pod: Pod, direction: str) -> bool:
    spec = policy.get("spec", {})
    types = spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]
    return (
        direction in types
        and policy["metadata"]["namespace"] == pod.namespace
        and selects(spec.get("podSelector") or {}, pod.labels)
    )


def _ports_match(ports: Sequence[Mapping[str, Any]], flow: Flow) -> bool:
    return not ports or any(_port_matches(entry, flow) for entry in ports)


def _port_matches(entry: Mapping[str, Any], flow: Flow) -> bool:
    protocol = entry.get("protocol", "TCP")
    if protocol != flow.protocol:
        return False
    port = entry.get("port")
    if port is None:
        return True
    if isinstance(port, str):
        destination = flow.destination
        if not isinstance(destination, Pod):
            return False  # a named port only exists on a pod
        return any(
            c.name == port and c.port == flow.port and c.protocol == protocol for c in destination.ports
        )
    end = entry.get("endPort", port)
    return bool(port <= flow.port <= end)


def _in_block(address: str, block: Mapping[str, Any]) -> bool:
    ip = ipaddress.ip_address(address)
    cidr = ipaddress.ip_network(block["cidr"], strict=False)
    if ip.version != cidr.version or ip not in cidr:
        return False
    excepted = (ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
    return not any(ip.version == e.version and ip in e for e in excepted)


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector: every matchLabels pair and every matchExpressions term holds."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_expression_holds(term, labels) for term in selector.get("matchExpressions") or [])


def _expression_holds(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator, values = term["key"], term["operator"], term.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown label selector operator {operator!r}")
