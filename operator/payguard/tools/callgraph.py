"""Owns the allowed call graph of PaymentServices (pure): workloads, cross-namespace callers, external
networks and the platform essentials, with edges labelled by ports and L7 operations, as DOT and Mermaid
text, and a simple layered layout the SVG and PNG drawings share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from payguard.model import Enforcement, PaymentService
from payguard.platform import Platform, ports_text

WORKLOAD, PRINCIPAL, NETWORK, ESSENTIAL = "workload", "principal", "network", "essential"


@dataclass(frozen=True)
class Node:
    key: str
    label: str
    kind: str
    audit: bool = False  # Audit mode: the policies are rendered in dry-run, nothing is enforced


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    highlight: str = ""  # why the edge deserves a second look, e.g. admitted at L3 by namespace only


@dataclass
class CallGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.key, node)
        return node.key


def call_graph(services: Sequence[PaymentService], *, platform: Platform) -> CallGraph:
    graph = CallGraph()
    essentials = [
        (
            graph.add(
                Node(
                    f"essential:{essential.name}",
                    f"{essential.name} ({', '.join(d.cidr or d.namespace for d in essential.destinations)})",
                    ESSENTIAL,
                )
            ),
            ports_text(essential.ports),
        )
        for essential in platform.essentials()
    ]
    for service in services:
        audit = service.enforcement is Enforcement.AUDIT
        for workload in service.workloads:
            key = graph.add(_workload_node(service, workload.name, audit=audit))
            for caller in workload.callers:
                operation = _operation(caller.ports or workload.port_numbers(), caller.methods, caller.paths)
                if caller.workload is not None:
                    source = graph.add(_workload_node(service, caller.workload, audit=audit))
                    graph.edges.append(Edge(source, key, operation))
                else:
                    assert caller.principal is not None
                    text = f"{caller.principal.namespace}/{caller.principal.service_account}"
                    source = graph.add(Node(f"principal:{text}", text, PRINCIPAL))
                    # L3 cannot see a ServiceAccount: without a pod selector the NetworkPolicy admits the
                    # caller's whole namespace.
                    wide = "" if caller.pod_selector else "L3 admits the whole namespace"
                    graph.edges.append(Edge(source, key, operation, highlight=wide))
            for rule in workload.egress:
                if rule.cidr is not None:
                    target = graph.add(Node(f"network:{rule.cidr}", str(rule.cidr), NETWORK))
                    graph.edges.append(Edge(key, target, _operation(rule.ports, (), ())))
                elif rule.workload is not None and not _is_caller(service, workload.name, rule.workload):
                    target = graph.add(_workload_node(service, rule.workload, audit=audit))
                    graph.edges.append(
                        Edge(key, target, "egress only", highlight="no caller rule on the target")
                    )
            graph.edges += [Edge(key, target, ports) for target, ports in essentials]
    return graph


def _workload_node(service: PaymentService, name: str, *, audit: bool) -> Node:
    label = f"{name}\n{service.namespace}/{service.name}" + ("\n(Audit)" if audit else "")
    return Node(f"workload:{service.namespace}/{service.name}/{name}", label, WORKLOAD, audit=audit)


def _is_caller(service: PaymentService, source: str, target: str) -> bool:
    return any(caller.workload == source for caller in service.workload(target).callers)


def _operation(ports: Sequence[int], methods: Sequence[object], paths: Sequence[str]) -> str:
    parts = [",".join(str(p) for p in ports) or "all ports"]
    if methods:
        parts.append(",".join(str(m) for m in methods))
    if paths:
        parts.append(" ".join(paths))
    return " ".join(parts)


def layered(graph: CallGraph) -> list[list[str]]:
    """Columns left to right: callers from outside, workloads by call depth, then networks and essentials."""
    incoming: dict[str, set[str]] = {key: set() for key in graph.nodes}
    for edge in graph.edges:
        if graph.nodes[edge.target].kind == WORKLOAD and graph.nodes[edge.source].kind == WORKLOAD:
            incoming[edge.target].add(edge.source)
    depth: dict[str, int] = {}

    def depth_of(key: str, seen: frozenset[str] = frozenset()) -> int:
        if key not in depth:
            parents = [p for p in incoming[key] if p not in seen]
            depth[key] = 1 + max((depth_of(p, seen | {key}) for p in parents), default=0)
        return depth[key]

    workloads = [k for k, n in graph.nodes.items() if n.kind == WORKLOAD]
    columns: list[list[str]] = [[k for k, n in graph.nodes.items() if n.kind == PRINCIPAL]]
    deepest = max((depth_of(k) for k in workloads), default=0)
    columns += [[k for k in workloads if depth_of(k) == level] for level in range(1, deepest + 1)]
    columns.append([k for k, n in graph.nodes.items() if n.kind in (NETWORK, ESSENTIAL)])
    return [column for column in columns if column]


def to_dot(graph: CallGraph) -> str:
    shapes = {WORKLOAD: "box", PRINCIPAL: "ellipse", NETWORK: "hexagon", ESSENTIAL: "component"}
    lines = ["digraph payguard {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    ids = {key: f"n{index}" for index, key in enumerate(graph.nodes)}
    for key, node in graph.nodes.items():
        style = ", style=dashed" if node.audit else ""
        lines.append(f'  {ids[key]} [label="{_dot_text(node.label)}", shape={shapes[node.kind]}{style}];')
    for edge in graph.edges:
        extra = f', color=red, fontcolor=red, tooltip="{_dot_text(edge.highlight)}"' if edge.highlight else ""
        lines.append(f'  {ids[edge.source]} -> {ids[edge.target]} [label="{_dot_text(edge.label)}"{extra}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: CallGraph) -> str:
    ids = {key: f"n{index}" for index, key in enumerate(graph.nodes)}
    brackets = {WORKLOAD: ("[", "]"), PRINCIPAL: ("([", "])"), NETWORK: ("{{", "}}"), ESSENTIAL: ("[(", ")]")}
    lines = ["flowchart LR"]
    for key, node in graph.nodes.items():
        opening, closing = brackets[node.kind]
        lines.append(f'  {ids[key]}{opening}"{_mermaid_text(node.label)}"{closing}')
    for index, edge in enumerate(graph.edges):
        arrow = "-.->" if edge.highlight else "-->"
        lines.append(f'  {ids[edge.source]} {arrow}|"{_mermaid_text(edge.label)}"| {ids[edge.target]}')
        if edge.highlight:
            lines.append(f"  linkStyle {index} stroke:#d33")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", "<br/>")
