"""Owns the reading of a PaymentService body: the CRD's defaults and rules, refused with the field path.

`parse_payment_service` is the only reader of a PaymentService body. It applies the CRD's defaults (so a
manifest rendered offline, never seen by an API server, means the same thing) and re-checks the CRD's
rules, plus the rules the schema cannot express because they depend on the namespace. Any violation
raises `InvalidSpec` naming the field path, e.g. `spec.workloads[1].callers[0].workload`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from payguard.model import (
    ALLOWED_KEY_SIZES,
    DEFAULT_KEY_SIZES,
    ISTIO_RESERVED_PORTS,
    MAX_CALLERS,
    MAX_CERTIFICATE_DURATION,
    MAX_CHILD_NAME_LENGTH,
    MAX_EGRESS_RULES,
    MAX_PATH_LENGTH,
    MAX_PATHS,
    MAX_PORTS,
    MAX_RULE_PORTS,
    MAX_SELECTOR_LABELS,
    MAX_WORKLOADS,
    METADATA_ADDRESSES,
    MIN_CERTIFICATE_DURATION,
    MIN_IPV4_PREFIX,
    MIN_IPV6_PREFIX,
    MIN_RENEW_BEFORE,
    Caller,
    CertificatePolicy,
    DriftPolicy,
    EgressRule,
    Enforcement,
    HttpMethod,
    InvalidSpec,
    IssuerKind,
    IssuerRef,
    KeyAlgorithm,
    PaymentService,
    PciScope,
    Port,
    Principal,
    PrivateKey,
    Protocol,
    RotationPolicy,
    Workload,
)

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_PATH_CHARACTERS = re.compile(r"[A-Za-z0-9._~!$&()+,;=:@/*-]*")
_SPEC_FIELDS = frozenset(
    {"pciScope", "enforcement", "driftPolicy", "trustDomain", "workloads", "certificates"}
)
_WORKLOAD_FIELDS = frozenset({"name", "selector", "serviceAccount", "ports", "callers", "egress"})
_PORT_FIELDS = frozenset({"name", "port", "protocol"})
_CALLER_FIELDS = frozenset({"workload", "principal", "ports", "methods", "paths"})
_PRINCIPAL_FIELDS = frozenset({"namespace", "serviceAccount"})
_EGRESS_FIELDS = frozenset({"workload", "cidr", "ports"})
_CERTIFICATES_FIELDS = frozenset({"issuerRef", "duration", "renewBefore", "privateKey"})
_ISSUER_REF_FIELDS = frozenset({"name", "kind", "group"})
_PRIVATE_KEY_FIELDS = frozenset({"algorithm", "size", "rotationPolicy"})

_Enum = TypeVar("_Enum", bound=StrEnum)

_DURATION = re.compile(
    r"(?:(?P<hours>[0-9]{1,4})h)?(?:(?P<minutes>[0-9]{1,6})m)?(?:(?P<seconds>[0-9]{1,8})s)?"
)


def parse_payment_service(body: Mapping[str, Any]) -> PaymentService:
    """Parses a PaymentService body (as served by the API or read from a file) into the typed model.

    Raises InvalidSpec naming the first offending field.
    """
    body = _mapping(body, "")
    metadata = _mapping(body.get("metadata"), "metadata")
    name = _required_string(metadata, "name", "metadata", pattern=_DNS_LABEL, max_length=61)
    # A file rendered offline may omit the namespace; kubectl would then use "default" too.
    namespace = _optional_string(metadata, "namespace", "metadata", default="default", pattern=_DNS_LABEL)
    spec = _mapping(body.get("spec"), "spec", fields=_SPEC_FIELDS)
    trust_domain = _optional_string(
        spec, "trustDomain", "spec", default="cluster.local", pattern=_DNS_SUBDOMAIN, max_length=253
    )
    workloads = _parse_workloads(spec, name=name)
    _check_references(workloads, namespace=namespace)
    generation = metadata.get("generation", 0)
    return PaymentService(
        name=name,
        namespace=namespace,
        uid=str(metadata.get("uid", "")),
        generation=generation if isinstance(generation, int) and not isinstance(generation, bool) else 0,
        pci_scope=_enum(spec, "pciScope", "spec", PciScope, default=PciScope.CDE),
        enforcement=_enum(spec, "enforcement", "spec", Enforcement, default=Enforcement.ENFORCE),
        drift_policy=_enum(spec, "driftPolicy", "spec", DriftPolicy, default=DriftPolicy.REVERT),
        trust_domain=trust_domain,
        workloads=workloads,
        certificates=_parse_certificates(spec.get("certificates"), "spec.certificates"),
    )


def parse_go_duration(text: str) -> timedelta:
    """Parses the duration form the CRD accepts (hours, minutes, seconds: `24h`, `1h30m`, `90m`)."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"not a duration in hours, minutes and seconds: {text!r}")
    return timedelta(
        hours=int(match["hours"] or 0), minutes=int(match["minutes"] or 0), seconds=int(match["seconds"] or 0)
    )


# --- workloads -------------------------------------------------------------------------------------------


def _parse_workloads(spec: Mapping[str, Any], *, name: str) -> tuple[Workload, ...]:
    items = _list(
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
        workload_name = _required_string(
            _mapping(item, path), "name", path, pattern=_DNS_LABEL, max_length=61
        )
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
    item = _mapping(raw, path, fields=_WORKLOAD_FIELDS)
    name = _required_string(item, "name", path, pattern=_DNS_LABEL, max_length=61)
    service_account = _required_string(item, "serviceAccount", path, pattern=_DNS_SUBDOMAIN, max_length=253)
    if service_account == "default":
        raise InvalidSpec(f"{path}.serviceAccount", 'must not be "default": it cannot identify a workload')
    ports = _parse_ports(item.get("ports"), f"{path}.ports")
    if item.get("callers") and not ports:
        raise InvalidSpec(f"{path}.ports", "is required when callers are declared")
    declared = {port.port for port in ports}
    callers = tuple(
        _parse_caller(
            _mapping(raw, f"{path}.callers[{index}]"), f"{path}.callers[{index}]", declared_ports=declared
        )
        for index, raw in enumerate(_list(item.get("callers"), f"{path}.callers", max_items=MAX_CALLERS))
    )
    for index, caller in enumerate(callers):
        if caller.workload == name:
            raise InvalidSpec(
                f"{path}.callers[{index}].workload", "a workload must not list itself as a caller"
            )
    egress = tuple(
        _parse_egress_rule(_mapping(raw, f"{path}.egress[{index}]"), f"{path}.egress[{index}]")
        for index, raw in enumerate(_list(item.get("egress"), f"{path}.egress", max_items=MAX_EGRESS_RULES))
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
    selector = _mapping(value, path)
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
    for index, raw in enumerate(_list(value, path, max_items=MAX_PORTS)):
        item_path = f"{path}[{index}]"
        item = _mapping(raw, item_path, fields=_PORT_FIELDS)
        name = _required_string(item, "name", item_path, pattern=_DNS_LABEL, max_length=15)
        if not re.search("[a-z]", name) or "--" in name:
            raise InvalidSpec(f"{item_path}.name", "must contain a letter and must not contain '--'")
        number = _port_number(item.get("port"), f"{item_path}.port")
        if number in ISTIO_RESERVED_PORTS:
            raise InvalidSpec(f"{item_path}.port", "ports 15000-15090 are reserved for the Istio sidecar")
        port = Port(
            name=name,
            port=number,
            protocol=_enum(item, "protocol", item_path, Protocol, default=Protocol.TCP),
        )
        for other in ports:
            if other.name == port.name:
                raise InvalidSpec(f"{item_path}.name", f"duplicate port name {name!r}")
            if (other.port, other.protocol) == (port.port, port.protocol):
                raise InvalidSpec(f"{item_path}.port", f"duplicate port {number}/{port.protocol}")
        ports.append(port)
    return tuple(ports)


def _parse_caller(item: Mapping[str, Any], path: str, *, declared_ports: set[int]) -> Caller:
    _check_known_fields(item, _CALLER_FIELDS, path)
    workload, principal = item.get("workload"), item.get("principal")
    if (workload is None) == (principal is None):
        raise InvalidSpec(path, "a caller must set exactly one of workload or principal")
    ports = _rule_ports(item.get("ports"), f"{path}.ports")
    for index, port in enumerate(ports):
        if port not in declared_ports:
            raise InvalidSpec(
                f"{path}.ports[{index}]", f"port {port} is not declared in this workload's ports"
            )
    methods_raw = _list(item.get("methods"), f"{path}.methods", max_items=len(HttpMethod), min_items=1)
    methods = tuple(
        _enum_value(raw, f"{path}.methods[{index}]", HttpMethod) for index, raw in enumerate(methods_raw)
    )
    _check_unique(methods, f"{path}.methods")
    paths_raw = _list(item.get("paths"), f"{path}.paths", max_items=MAX_PATHS, min_items=1)
    paths = tuple(_http_path(raw, f"{path}.paths[{index}]") for index, raw in enumerate(paths_raw))
    _check_unique(paths, f"{path}.paths")
    return Caller(
        workload=None
        if workload is None
        else _required_string(item, "workload", path, pattern=_DNS_LABEL, max_length=61),
        principal=None
        if principal is None
        else _parse_principal(_mapping(principal, f"{path}.principal"), f"{path}.principal"),
        ports=ports,
        methods=methods,
        paths=paths,
    )


def _parse_principal(item: Mapping[str, Any], path: str) -> Principal:
    _check_known_fields(item, _PRINCIPAL_FIELDS, path)
    namespace = _required_string(item, "namespace", path, pattern=_DNS_LABEL, max_length=63)
    service_account = _required_string(item, "serviceAccount", path, pattern=_DNS_SUBDOMAIN, max_length=253)
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
    _check_known_fields(item, _EGRESS_FIELDS, path)
    workload, cidr = item.get("workload"), item.get("cidr")
    if (workload is None) == (cidr is None):
        raise InvalidSpec(path, "an egress rule must set exactly one of workload or cidr")
    ports = _rule_ports(item.get("ports"), f"{path}.ports")
    if cidr is not None and not ports:
        raise InvalidSpec(
            f"{path}.ports", "is required with cidr: name the ports the external system listens on"
        )
    return EgressRule(
        workload=None
        if workload is None
        else _required_string(item, "workload", path, pattern=_DNS_LABEL, max_length=61),
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


def _check_references(workloads: Sequence[Workload], *, namespace: str) -> None:
    """Cross-workload rules: targets exist, egress ports are the target's, principals are not our own."""
    by_name = {workload.name: workload for workload in workloads}
    by_identity = {workload.service_account: workload for workload in workloads}
    for workload_index, workload in enumerate(workloads):
        path = f"spec.workloads[{workload_index}]"
        for index, caller in enumerate(workload.callers):
            if caller.workload is not None and caller.workload not in by_name:
                raise InvalidSpec(
                    f"{path}.callers[{index}].workload",
                    f"no workload named {caller.workload!r} in this PaymentService",
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
                    f"no workload named {rule.workload!r} in this PaymentService",
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


# --- certificates ----------------------------------------------------------------------------------------


def _parse_certificates(value: object, path: str) -> CertificatePolicy:
    item = _mapping(value, path, fields=_CERTIFICATES_FIELDS)
    issuer = _mapping(item.get("issuerRef"), f"{path}.issuerRef", fields=_ISSUER_REF_FIELDS)
    issuer_ref = IssuerRef(
        name=_required_string(issuer, "name", f"{path}.issuerRef", pattern=_DNS_SUBDOMAIN, max_length=253),
        kind=_enum(issuer, "kind", f"{path}.issuerRef", IssuerKind, default=IssuerKind.ISSUER),
        group=_optional_string(
            issuer,
            "group",
            f"{path}.issuerRef",
            default="cert-manager.io",
            pattern=_DNS_SUBDOMAIN,
            max_length=253,
        ),
    )
    duration = _duration(item, "duration", path, default="24h")
    if not MIN_CERTIFICATE_DURATION <= duration <= MAX_CERTIFICATE_DURATION:
        raise InvalidSpec(f"{path}.duration", "must be between 1h and 24h")
    renew_before = _duration(item, "renewBefore", path, default="8h")
    if renew_before < MIN_RENEW_BEFORE:
        raise InvalidSpec(f"{path}.renewBefore", "must be at least 5m")
    if renew_before >= duration:
        raise InvalidSpec(f"{path}.renewBefore", "must be shorter than duration")
    return CertificatePolicy(
        issuer_ref=issuer_ref,
        duration=duration,
        renew_before=renew_before,
        private_key=_parse_private_key(item.get("privateKey", {}), f"{path}.privateKey"),
    )


def _parse_private_key(value: object, path: str) -> PrivateKey:
    item = _mapping(value, path, fields=_PRIVATE_KEY_FIELDS)
    algorithm = _enum(item, "algorithm", path, KeyAlgorithm, default=KeyAlgorithm.ECDSA)
    size = item.get("size")
    if size is None:
        size = DEFAULT_KEY_SIZES[algorithm]
    elif algorithm is KeyAlgorithm.ED25519:
        raise InvalidSpec(f"{path}.size", "must be omitted for Ed25519 keys")
    elif isinstance(size, bool) or not isinstance(size, int) or size not in ALLOWED_KEY_SIZES[algorithm]:
        allowed = " or ".join(str(bits) for bits in ALLOWED_KEY_SIZES[algorithm])
        raise InvalidSpec(f"{path}.size", f"{algorithm} keys must be {allowed} bits")
    return PrivateKey(
        algorithm=algorithm,
        size=size,
        rotation_policy=_enum(item, "rotationPolicy", path, RotationPolicy, default=RotationPolicy.ALWAYS),
    )


def _duration(item: Mapping[str, Any], key: str, path: str, *, default: str) -> timedelta:
    text = _optional_string(item, key, path, default=default, max_length=16)
    try:
        return parse_go_duration(text)
    except ValueError:
        raise InvalidSpec(
            f"{path}.{key}", f"{text!r} must be written in hours, minutes and seconds, such as 8h"
        ) from None


# --- typed readers: a wrong type is an InvalidSpec, never a TypeError ------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value: object, path: str, *, fields: frozenset[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSpec(path or "(root)", "is required and must be an object")
    if fields is not None:
        _check_known_fields(value, fields, path)
    return value


def _check_known_fields(item: Mapping[str, Any], fields: frozenset[str], path: str) -> None:
    """A misspelt field must not be silently ignored: `enforcment: Audit` would mean Enforce."""
    for key in item:
        if key not in fields:
            raise InvalidSpec(
                _join(path, str(key)), f"unknown field; expected one of {', '.join(sorted(fields))}"
            )


def _list(
    value: object, path: str, *, max_items: int, min_items: int = 0, required: bool = False
) -> Sequence[Any]:
    """Reads a list; an absent optional list is empty, a present one must hold min_items..max_items."""
    if value is None:
        if required:
            raise InvalidSpec(path, "is required")
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidSpec(path, "must be a list")
    if not min_items <= len(value) <= max_items:
        raise InvalidSpec(path, f"must have between {min_items} and {max_items} items, got {len(value)}")
    return value


def _required_string(
    item: Mapping[str, Any], key: str, path: str, *, pattern: re.Pattern[str] | None = None, max_length: int
) -> str:
    if item.get(key) is None:
        raise InvalidSpec(_join(path, key), "is required")
    return _string(item[key], _join(path, key), pattern=pattern, max_length=max_length)


def _optional_string(
    item: Mapping[str, Any],
    key: str,
    path: str,
    *,
    default: str,
    pattern: re.Pattern[str] | None = None,
    max_length: int = 253,
) -> str:
    if item.get(key) is None:
        return default
    return _string(item[key], _join(path, key), pattern=pattern, max_length=max_length)


def _string(value: object, path: str, *, pattern: re.Pattern[str] | None, max_length: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidSpec(path, "must be a non-empty string")
    if len(value) > max_length:
        raise InvalidSpec(path, f"must be at most {max_length} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidSpec(path, f"{value!r} must match {pattern.pattern}")
    return value


def _enum(item: Mapping[str, Any], key: str, path: str, enum: type[_Enum], *, default: _Enum) -> _Enum:
    if item.get(key) is None:
        return default
    return _enum_value(item[key], _join(path, key), enum)


def _enum_value(value: object, path: str, enum: type[_Enum]) -> _Enum:
    values = [member.value for member in enum]
    if not isinstance(value, str) or value not in values:
        raise InvalidSpec(path, f"{value!r} is not one of {', '.join(values)}")
    return enum(value)


def _port_number(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidSpec(path, "must be a port number between 1 and 65535")
    return value


def _rule_ports(value: object, path: str) -> tuple[int, ...]:
    raw = _list(value, path, max_items=MAX_RULE_PORTS, min_items=1)
    ports = tuple(_port_number(port, f"{path}[{index}]") for index, port in enumerate(raw))
    _check_unique(ports, path)
    return ports


def _check_unique(values: Sequence[object], path: str) -> None:
    seen: set[object] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise InvalidSpec(f"{path}[{index}]", f"duplicate value {value!r}")
        seen.add(value)
