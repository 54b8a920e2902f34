"""Owns the typed readers of a PaymentService body: a wrong type or shape is an InvalidSpec naming the field.

They are shared by the parsers of workloads and certificates; none knows what a PaymentService means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from payguard.model import MAX_RULE_PORTS, InvalidSpec

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

_Enum = TypeVar("_Enum", bound=StrEnum)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def mapping(value: object, path: str, *, fields: frozenset[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSpec(path or "(root)", "is required and must be an object")
    if fields is not None:
        check_known_fields(value, fields, path)
    return value


def check_known_fields(item: Mapping[str, Any], fields: frozenset[str], path: str) -> None:
    """A misspelt field must not be silently ignored: `enforcment: Audit` would mean Enforce."""
    for key in item:
        if key not in fields:
            raise InvalidSpec(
                _join(path, str(key)), f"unknown field; expected one of {', '.join(sorted(fields))}"
            )


def list_(
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


def required_string(
    item: Mapping[str, Any], key: str, path: str, *, pattern: re.Pattern[str] | None = None, max_length: int
) -> str:
    if item.get(key) is None:
        raise InvalidSpec(_join(path, key), "is required")
    return _string(item[key], _join(path, key), pattern=pattern, max_length=max_length)


def optional_string(
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


def enum(item: Mapping[str, Any], key: str, path: str, enum: type[_Enum], *, default: _Enum) -> _Enum:
    if item.get(key) is None:
        return default
    return enum_value(item[key], _join(path, key), enum)


def enum_value(value: object, path: str, enum: type[_Enum]) -> _Enum:
    values = [member.value for member in enum]
    if not isinstance(value, str) or value not in values:
        raise InvalidSpec(path, f"{value!r} is not one of {', '.join(values)}")
    return enum(value)


def port_number(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidSpec(path, "must be a port number between 1 and 65535")
    return value


def rule_ports(value: object, path: str) -> tuple[int, ...]:
    raw = list_(value, path, max_items=MAX_RULE_PORTS, min_items=1)
    ports = tuple(port_number(port, f"{path}[{index}]") for index, port in enumerate(raw))
    check_unique(ports, path)
    return ports


def check_unique(values: Sequence[object], path: str) -> None:
    seen: set[object] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise InvalidSpec(f"{path}[{index}]", f"duplicate value {value!r}")
        seen.add(value)
