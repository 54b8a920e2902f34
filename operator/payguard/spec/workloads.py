"""Owns the parsing of `spec.workloads`: selectors, ports, callers, egress and the rules across workloads.

A workload's fields are read here; the checks that relate workloads to one another (references exist,
egress ports are the target's, selectors do not nest) run once every workload is read.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from payguard.kinds import NAMESPACE_NAME_LABEL
from payguard.model import (
    ISTIO_RESERVED_PORTS,
    MAX_CALLERS,
    MAX_CHILD_NAME_LENGTH,
    MAX_EGRESS_RULES,
    MAX_PATH_LENGTH,
    MAX_PATHS,
    MAX_PORTS,
    MAX_SELECTOR_LABELS,
    MAX_WORKLOADS,
    MIN_IPV4_PREFIX,
    MIN_IPV6_PREFIX,
    Caller,
    EgressRule,
    HttpMethod,
    InvalidSpec,
    Port,
    Principal,
    Protocol,
    Workload,
)
from payguard.platform import METADATA_ADDRESSES
from payguard.spec.readers import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    check_known_fields,
    check_unique,
    enum,
    enum_value,
    list_,
    mapping,
    port_number,
    required_string,
    rule_ports,
)

_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_PATH_CHARACTERS = re.compile(r"[A-Za-z0-9._~!$&()+,;=:@/*-]*")
_WORKLOAD_FIELDS = frozenset({"name", "selector", "serviceAccount", "ports", "callers", "egress"})
_PORT_FIELDS = frozenset({"name", "port", "protocol"})
_CALLER_FIELDS = frozenset({"workload", "principal", "ports", "methods", "paths"})
_PRINCIPAL_FIELDS = frozenset({"namespace", "serviceAccount", "selector", "namespaceLabels"})
_EGRESS_FIELDS = frozenset({"workload", "cidr", "ports"})


def parse_workloads(spec: Mapping[str, Any], *, name: str) -> tuple[Workload, ...]:
    items = list_(
        spec.get("workloads"), "spec.workloads", min_items=1, max_items=MAX_WORKLOADS, required=True
    )
    _check_workload_names(items, service_name=name)
    workloads: list[Workload] = []
    for index, item in enumerate(items):
        workload = _parse_workload(item, f"spec.workloads[{index}]")
        for earlier in workloads:
            if earlier.service_account == workload.service_account:
                raise InvalidSpec(
                    f"spec.workloads[{index}].serviceAccount",
                    f"{workload.service_account!r} is already used by workload {earlier.name!r}; "
                    "each workload needs its own identity",
                )
        workloads.append(workload)
    _check_selectors_do_not_nest(workloads)
    return tuple(workloads)


def _check_workload_names(items: Sequence[Any], *, service_name: str) -> None:
    """Names first: every other rule refers to workloads by name."""
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        path = f"spec.workloads[{index}]"
        workload_name = required_string(mapping(item, path), "name", path, pattern=DNS_LABEL, max_length=61)
        if workload_name in seen:
            raise InvalidSpec(
                f"{path}.name", f"duplicate workload name (also spec.workloads[{seen[workload_name]}])"
            )
        if len(service_name) + 1 + len(workload_name) > MAX_CHILD_NAME_LENGTH:
            raise InvalidSpec(
                f"{path}.name",
                f"generated name {service_name}-{workload_name} would exceed {MAX_CHILD_NAME_LENGTH} "
                "characters; shorten metadata.name or the workload name",
            )
        seen[workload_name] = index


def _parse_workload(raw: object, path: str) -> Workload:
    item = mapping(raw, path, fields=_WORKLOAD_FIELDS)
    name = required_string(item, "name", path, pattern=DNS_LABEL, max_length=61)
    service_account = required_string(item, "serviceAccount", path, pattern=DNS_SUBDOMAIN, max_length=253)
    if service_account == "default":
        raise InvalidSpec(f"{path}.serviceAccount", 'must not be "default": it cannot identify a workload')
    ports = _parse_ports(item.get("ports"), f"{path}.ports")
    if item.get("callers") and not ports:
        raise InvalidSpec(f"{path}.ports", "is required when callers are declared")
    declared = {port.port for port in ports}
    callers = tuple(
        _parse_caller(
            mapping(raw, f"{path}.callers[{index}]"), f"{path}.callers[{index}]", declared_ports=declared
        )
        for index, raw in enumerate(list_(item.get("callers"), f"{path}.callers", max_items=MAX_CALLERS))
    )
    for index, caller in enumerate(callers):
        if caller.workload == name:
            raise InvalidSpec(
                f"{path}.callers[{index}].workload", "a workload must not list itself as a caller"
            )
    egress = tuple(
        _parse_egress_rule(mapping(raw, f"{path}.egress[{index}]"), f"{path}.egress[{index}]")
        for index, raw in enumerate(list_(item.get("egress"), f"{path}.egress", max_items=MAX_EGRESS_RULES))
    )
    for index, rule in enumerate(egress):
        if rule.workload == name:
            raise InvalidSpec(
                f"{path}.egress[{index}].workload", "a workload must not list itself as an egress target"
            )
    return Workload(
        name=name,
        selector=_parse_selector(item.get("selector"), f"{path}.selector"),
        service_account=service_account,
        ports=ports,
        callers=callers,
        egress=egress,
    )


def _parse_selector(value: object, path: str) -> tuple[tuple[str, str], ...]:
    selector = mapping(value, path)
    if not selector:
        raise InvalidSpec(
            path, "must not be empty: an empty selector would govern every pod in the namespace"
        )
    if len(selector) > MAX_SELECTOR_LABELS:
        raise InvalidSpec(path, f"must have at most {MAX_SELECTOR_LABELS} labels")
    for key, label_value in selector.items():
        if not isinstance(key, str) or len(key) > 317 or not _LABEL_KEY.fullmatch(key):
            raise InvalidSpec(path, f"{key!r} is not a label key ([prefix/]name)")
        if (
            not isinstance(label_value, str)
            or len(label_value) > 63
            or not _LABEL_VALUE.fullmatch(label_value)
        ):
            raise InvalidSpec(f"{path}.{key}", f"{label_value!r} is not a non-empty label value")
    return tuple(sorted(selector.items()))


def _parse_ports(value: object, path: str) -> tuple[Port, ...]:
    ports: list[Port] = []
    for index, raw in enumerate(list_(value, path, max_items=MAX_PORTS)):
        item_path = f"{path}[{index}]"
        item = mapping(raw, item_path, fields=_PORT_FIELDS)
        name = required_string(item, "name", item_path, pattern=DNS_LABEL, max_length=15)
        if not re.search("[a-z]", name) or "--" in name:
            raise InvalidSpec(f"{item_path}.name", "must contain a letter and must not contain '--'")
        number = port_number(item.get("port"), f"{item_path}.port")
        if number in ISTIO_RESERVED_PORTS:
            raise InvalidSpec(f"{item_path}.port", "ports 15000-15090 are reserved for the Istio sidecar")
        port = Port(
            name=name,
            port=number,
            protocol=enum(item, "protocol", item_path, Protocol, default=Protocol.TCP),
        )
        for other in ports:
            if other.name == port.name:
                raise InvalidSpec(f"{item_path}.name", f"duplicate port name {name!r}")
            if (other.port, other.protocol) == (port.port, port.protocol):
                raise InvalidSpec(f"{item_path}.port", f"duplicate port {number}/{port.protocol}")
        ports.append(port)
    return tuple(ports)


def _parse_caller(item: Mapping[str, Any], path: str, *, declared_ports: set[int]) -> Caller:
    check_known_fields(item, _CALLER_FIELDS, path)
    workload, principal = item.get("workload"), item.get("principal")
    if (workload is None) == (principal is None):
        raise InvalidSpec(path, "a caller must set exactly one of workload or principal")
    ports = rule_ports(item.get("ports"), f"{path}.ports")
    for index, port in enumerate(ports):
        if port not in declared_ports:
            raise InvalidSpec(
                f"{path}.ports[{index}]", f"port {port} is not declared in this workload's ports"
            )
    methods_raw = list_(item.get("methods"), f"{path}.methods", max_items=len(HttpMethod), min_items=1)
    methods = tuple(
        enum_value(raw, f"{path}.methods[{index}]", HttpMethod) for index, raw in enumerate(methods_raw)
    )
    check_unique(methods, f"{path}.methods")
    paths_raw = list_(item.get("paths"), f"{path}.paths", max_items=MAX_PATHS, min_items=1)
    paths = tuple(_http_path(raw, f"{path}.paths[{index}]") for index, raw in enumerate(paths_raw))
    check_unique(paths, f"{path}.paths")
    pod_selector: tuple[tuple[str, str], ...] = ()
    namespace_labels: tuple[tuple[str, str], ...] = ()
    if principal is not None:
        principal = mapping(principal, f"{path}.principal")
        if "selector" in principal:
            pod_selector = _parse_selector(principal["selector"], f"{path}.principal.selector")
        if "namespaceLabels" in principal:
            namespace_labels = _namespace_labels(principal["namespaceLabels"], f"{path}.principal")
    return Caller(
        workload=None
        if workload is None
        else required_string(item, "workload", path, pattern=DNS_LABEL, max_length=61),
        principal=None if principal is None else _parse_principal(principal, f"{path}.principal"),
        ports=ports,
        methods=methods,
        paths=paths,
        pod_selector=pod_selector,
        namespace_labels=namespace_labels,
    )


def _namespace_labels(value: object, path: str) -> tuple[tuple[str, str], ...]:
    labels = _parse_selector(value, f"{path}.namespaceLabels")
    if any(key == NAMESPACE_NAME_LABEL for key, _ in labels):
        raise InvalidSpec(
            f"{path}.namespaceLabels",
            f"must not set {NAMESPACE_NAME_LABEL}: the namespace is principal.namespace",
        )
    return labels


def _parse_principal(item: Mapping[str, Any], path: str) -> Principal:
    check_known_fields(item, _PRINCIPAL_FIELDS, path)
    namespace = required_string(item, "namespace", path, pattern=DNS_LABEL, max_length=63)
    service_account = required_string(item, "serviceAccount", path, pattern=DNS_SUBDOMAIN, max_length=253)
    if service_account == "default":
        raise InvalidSpec(
            f"{path}.serviceAccount",
            'must not be "default": it would admit every pod of that namespace without its own',
        )
    return Principal(namespace=namespace, service_account=service_account)


def _http_path(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidSpec(path, "must be a non-empty string")
    if len(value) > MAX_PATH_LENGTH:
        raise InvalidSpec(path, f"must be at most {MAX_PATH_LENGTH} characters")
    if not value.startswith("/"):
        raise InvalidSpec(path, "a path must start with '/'")
    if not _PATH_CHARACTERS.fullmatch(value):
        raise InvalidSpec(
            path, "a path may only contain letters, digits and - . _ ~ ! $ & ( ) + , ; = : @ / *"
        )
    if "*" in value[:-1]:
        raise InvalidSpec(path, "'*' is only allowed as the last character of a path")
    if "//" in value or "/./" in value or "/../" in value or value.endswith(("/.", "/..")):
        raise InvalidSpec(path, "a path must be normalized: no '//', '.' or '..' segments")
    return value


def _parse_egress_rule(item: Mapping[str, Any], path: str) -> EgressRule:
    check_known_fields(item, _EGRESS_FIELDS, path)
    workload, cidr = item.get("workload"), item.get("cidr")
    if (workload is None) == (cidr is None):
        raise InvalidSpec(path, "an egress rule must set exactly one of workload or cidr")
    ports = rule_ports(item.get("ports"), f"{path}.ports")
    if cidr is not None and not ports:
        raise InvalidSpec(
            f"{path}.ports", "is required with cidr: name the ports the external system listens on"
        )
    return EgressRule(
        workload=None
        if workload is None
        else required_string(item, "workload", path, pattern=DNS_LABEL, max_length=61),
        cidr=None if cidr is None else _external_network(cidr, f"{path}.cidr"),
        ports=ports,
    )


def _external_network(value: object, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidSpec(path, "must be a network in CIDR notation such as 203.0.113.0/24")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise InvalidSpec(
            path, f"{value!r} is not a network in CIDR notation with no host bits set"
        ) from None
    if "/" not in value or (
        isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped
    ):
        raise InvalidSpec(path, f"{value!r} is not a network in CIDR notation with no host bits set")
    minimum = MIN_IPV4_PREFIX if network.version == 4 else MIN_IPV6_PREFIX
    if network.prefixlen < minimum:
        raise InvalidSpec(path, f"{value} is too broad: the prefix must be at least /{minimum}")
    address = network.network_address
    if address.is_loopback or address.is_link_local or address.is_multicast or address.is_unspecified:
        raise InvalidSpec(
            path, "must be a unicast network: loopback, link-local, multicast and unspecified are refused"
        )
    if any(metadata in network for metadata in METADATA_ADDRESSES if metadata.version == network.version):
        raise InvalidSpec(path, f"{value} includes a cloud instance-metadata address")
    return network


def check_references(workloads: Sequence[Workload], *, namespace: str) -> None:
    """Cross-workload rules: targets exist, egress ports are the target's, principals are not our own."""
    by_name = {workload.name: workload for workload in workloads}
    by_identity = {workload.service_account: workload for workload in workloads}
    for workload_index, workload in enumerate(workloads):
        path = f"spec.workloads[{workload_index}]"
        for index, caller in enumerate(workload.callers):
            if caller.workload is not None and caller.workload not in by_name:
                raise InvalidSpec(
                    f"{path}.callers[{index}].workload",
                    f'no workload named "{caller.workload}" in this PaymentService',
                )
            # Needs the namespace, so the CRD cannot check it: refer to our own workloads by name.
            if caller.principal is not None and caller.principal.namespace == namespace:
                own = by_identity.get(caller.principal.service_account)
                if own is not None:
                    raise InvalidSpec(
                        f"{path}.callers[{index}].principal",
                        f"is workload {own.name!r} of this PaymentService; use `workload: {own.name}`"
                        if own is not workload
                        else "is this workload itself; a workload must not list itself as a caller",
                    )
        for index, rule in enumerate(workload.egress):
            if rule.workload is None:
                continue
            target = by_name.get(rule.workload)
            if target is None:
                raise InvalidSpec(
                    f"{path}.egress[{index}].workload",
                    f'no workload named "{rule.workload}" in this PaymentService',
                )
            if not target.ports:
                # No ports would render a NetworkPolicy rule open on every port and protocol.
                raise InvalidSpec(
                    f"{path}.egress[{index}].workload",
                    f"workload {target.name!r} declares no ports, so there is nothing to call on it",
                )
            for port_index, port in enumerate(rule.ports):
                if port not in target.port_numbers():
                    raise InvalidSpec(
                        f"{path}.egress[{index}].ports[{port_index}]",
                        f"port {port} is not declared in the ports of workload {target.name!r}",
                    )


def _check_selectors_do_not_nest(workloads: Sequence[Workload]) -> None:
    """A selector contained in another one governs the same pods twice, and ALLOW policies add up."""
    for index, workload in enumerate(workloads):
        for other in workloads:
            if other is not workload and set(workload.selector) <= set(other.selector):
                raise InvalidSpec(
                    f"spec.workloads[{index}].selector",
                    f"selects every pod that workload {other.name!r} selects; selectors must not nest",
                )
