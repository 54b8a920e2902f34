"""Owns the CRD's CEL rules (`x-kubernetes-validations`) offline: each rule of the packaged CRD evaluated
on the part of the manifest it governs, with the Kubernetes CIDR and IP functions the rules use.

The CEL C++ runtime (cel-expr-python) evaluates the rules as written. Kubernetes' `cidr()` and `ip()`
values are carried as their text; the functions below give them Kubernetes' meaning. A few messages are
written with cel-go macros the C++ runtime lacks (`transformList`, `flatten`): such a rule still decides
the verdict here, and `check` words its message from the operator's own parser instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from payguard.tools.schema import Schema, schema_nodes
from payguard.tools.sources import FieldPath, path_keys

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class RuleViolation:
    """A rule that evaluated to false (or failed to evaluate) at `path` (its location plus fieldPath)."""

    path: FieldPath
    rule: str
    message: str | None  # None when the messageExpression cannot be evaluated here

    def text(self) -> str:
        return f'Invalid value: "object": {self.message or f"failed rule: {self.rule}"}'


def rule_violations(schema: Schema, body: Any) -> list[RuleViolation]:
    """Every failing rule of the schema over body (defaults already applied), parents first."""
    violations = []
    for node_schema, value, path in schema_nodes(schema, body):
        for rule in node_schema.get("x-kubernetes-validations", []):
            violation = _evaluate(rule, value, path)
            if violation is not None:
                violations.append(violation)
    return violations


def _evaluate(rule: dict[str, Any], value: Any, path: FieldPath) -> RuleViolation | None:
    where = (*path, *path_keys(rule.get("fieldPath", "").lstrip(".")))
    try:
        holds = _program(rule["rule"]).eval(data={"self": value}).plain_value()
    except Exception as error:
        return RuleViolation(where, rule["rule"], f"evaluation error: {error}")
    if holds is True:
        return None
    message = rule.get("message")
    if "messageExpression" in rule:
        message = _message(rule["messageExpression"], value) or message
    return RuleViolation(where, rule["rule"], " ".join(message.split()) if message else None)


def _message(expression: str, value: Any) -> str | None:
    try:
        program = _program(expression)
    except Exception:
        return None
    try:
        text = program.eval(data={"self": value}).plain_value()
    except Exception:
        return None
    return text if isinstance(text, str) else None


@cache
def _program(expression: str) -> Any:
    return _environment().compile(expression)


@cache
def _environment() -> Any:
    # Imported on first use: the CEL runtime is a native library that `payguard run` never needs.
    from cel_expr_python import cel  # noqa: PLC0415
    from cel_expr_python.ext import ext_strings  # noqa: PLC0415

    return cel.NewEnv(
        variables={"self": cel.Type.DYN},
        extensions=[ext_strings.ExtStrings(), cel.CelExtension("kubernetes-net", _network_functions(cel))],
    )


def _network_functions(cel: Any) -> list[Any]:
    text, boolean, integer = cel.Type.STRING, cel.Type.BOOL, cel.Type.INT

    def function(name: str, result: Any, impl: Callable[..., Any], *, member: bool, arity: int = 1) -> Any:
        overload = cel.Overload(f"{name}_string", result, [text] * arity, member, impl)
        return cel.FunctionDecl(name, [overload])

    return [
        function("isCIDR", boolean, _is_cidr, member=False),
        function("cidr", text, lambda value: str(_interface(value)), member=False),
        function("masked", text, lambda value: str(_interface(value).network), member=True),
        function("prefixLength", integer, lambda value: _interface(value).network.prefixlen, member=True),
        function("ip", text, lambda value: str(_interface(value).ip), member=True),
        function("family", integer, lambda value: ipaddress.ip_address(value).version, member=True),
        function("isGlobalUnicast", boolean, _is_global_unicast, member=True),
        function(
            "containsIP",
            boolean,
            lambda value, ip: ipaddress.ip_address(ip) in _interface(value).network,
            member=True,
            arity=2,
        ),
    ]


def _is_cidr(value: str) -> bool:
    """Go's netip.ParsePrefix: an address, a slash and a prefix length; no zone, no leading zeros."""
    if "/" not in value or "%" in value:
        return False
    try:
        _interface(value)
    except ValueError:
        return False
    return True


def _interface(value: str) -> Interface:
    if "/" not in value:
        raise ValueError(f"{value!r} is not in CIDR notation")
    return ipaddress.ip_interface(value)


def _is_global_unicast(value: str) -> bool:
    """Go's IP.IsGlobalUnicast: not unspecified, loopback, multicast, link-local or the broadcast address."""
    address: Address = ipaddress.ip_address(value)
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_link_local:
        return False
    return address != ipaddress.IPv4Address("255.255.255.255")
