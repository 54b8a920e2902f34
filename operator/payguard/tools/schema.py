"""Owns the PaymentService CRD's OpenAPI schema offline: the API server's defaulting and its structural
checks (types, enums, bounds, patterns, required fields, unknown fields, list keys), with its messages.

The schema is read from the CRD file itself (a copy ships inside the package), so `payguard check` and
admission share one source of truth; the CEL rules of the same schema are `celrules`' part.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from payguard.tools.sources import FieldPath, path_text

Schema = Mapping[str, Any]
_TYPES: Mapping[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@dataclass(frozen=True)
class Violation:
    """One refusal, as the API server words it: the field path, the error type and the detail."""

    path: FieldPath
    message: str
    # Required, Unsupported (enum), Too long, Too many, wrong type: the API server then skips the CEL rules.
    blocking: bool = False

    def __str__(self) -> str:
        return f"{path_text(self.path) or '<root>'}: {self.message}"


@cache
def crd_schema() -> Schema:
    """The openAPIV3Schema of the packaged CRD (kept identical to crds/paymentservice.yaml by a test)."""
    text = resources.files("payguard.tools").joinpath("paymentservice-crd.yaml").read_text()
    crd = yaml.safe_load(text)
    (version,) = crd["spec"]["versions"]
    schema: Schema = version["schema"]["openAPIV3Schema"]
    return schema


def with_defaults(schema: Schema, value: Any) -> Any:
    """A copy of value with every absent defaulted property filled in, the way the API server defaults."""
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: Schema, value: Any) -> None:
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, child in properties.items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
        for name, item in value.items():
            child = properties.get(name) or _map_values(schema)
            if child is not None:
                _default(child, item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default(schema["items"], item)


def _map_values(schema: Schema) -> Schema | None:
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else None


def structural_violations(schema: Schema, value: Any, path: FieldPath = ()) -> list[Violation]:
    """Every schema violation of value, in document order."""
    return list(_violations(schema, value, path))


def _violations(schema: Schema, value: Any, path: FieldPath) -> Iterator[Violation]:
    expected = schema.get("type")
    if expected and not _has_type(value, expected):
        yield Violation(
            path,
            f"Invalid value: {_kind_of(value)!r}: {path_text(path)} in body must be of type {expected}: "
            f"{_kind_of(value)!r}",
            blocking=True,
        )
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(item) for item in schema["enum"])
        yield Violation(
            path, f"Unsupported value: {json.dumps(value)}: supported values: {supported}", blocking=True
        )
    if isinstance(value, str):
        yield from _string_violations(schema, value, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            yield _invalid(path, value, f"should be greater than or equal to {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            yield _invalid(path, value, f"should be less than or equal to {schema['maximum']}")
    elif isinstance(value, list):
        yield from _list_violations(schema, value, path)
    elif isinstance(value, dict):
        yield from _object_violations(schema, value, path)


def _string_violations(schema: Schema, value: str, path: FieldPath) -> Iterator[Violation]:
    if "minLength" in schema and len(value) < schema["minLength"]:
        yield _invalid(path, value, f"should be at least {schema['minLength']} chars long")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        yield Violation(path, f"Too long: may not be more than {schema['maxLength']} bytes", blocking=True)
    if "pattern" in schema and not re.search(schema["pattern"], value):
        yield _invalid(path, value, f"should match '{schema['pattern']}'")


def _list_violations(schema: Schema, value: list[Any], path: FieldPath) -> Iterator[Violation]:
    if "minItems" in schema and len(value) < schema["minItems"]:
        yield _invalid(path, len(value), f"should have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        yield Violation(
            path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items", blocking=True
        )
    items = schema.get("items")
    if isinstance(items, Mapping):
        for position, item in enumerate(value):
            yield from _violations(items, item, (*path, position))
    yield from _duplicates(schema, value, path)


def _duplicates(schema: Schema, value: list[Any], path: FieldPath) -> Iterator[Violation]:
    """x-kubernetes-list-type set and map: a repeated item (or map key) is refused at its second place."""
    list_type = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys", [])
    seen: set[str] = set()
    for position, item in enumerate(value):
        if list_type == "set":
            identity = json.dumps(item, sort_keys=True)
            shown = json.dumps(item)
        elif list_type == "map" and isinstance(item, dict):
            key = {name: item.get(name) for name in keys}
            identity = shown = json.dumps(key, sort_keys=True)
        else:
            continue
        if identity in seen:
            yield Violation((*path, position), f"Duplicate value: {shown}")
        seen.add(identity)


def _object_violations(schema: Schema, value: dict[str, Any], path: FieldPath) -> Iterator[Violation]:
    properties: Mapping[str, Schema] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            yield Violation((*path, name), "Required value", blocking=True)
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        yield _invalid(path, len(value), f"should have at least {schema['minProperties']} properties")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        yield Violation(
            path, f"Too many: {len(value)}: must have at most {schema['maxProperties']} items", blocking=True
        )
    values_schema = _map_values(schema)
    # ObjectMeta is validated by the API server's own rules beyond the few the CRD restates.
    open_object = path == ("metadata",) or schema.get("x-kubernetes-preserve-unknown-fields") is True
    for name, item in value.items():
        child = properties.get(name) or values_schema
        if child is not None:
            yield from _violations(child, item, (*path, name))
        elif not open_object:
            yield Violation((*path, name), "field not declared in schema")


def _invalid(path: FieldPath, value: object, detail: str) -> Violation:
    return Violation(path, f"Invalid value: {json.dumps(value)}: {path_text(path)} in body {detail}")


def _has_type(value: object, expected: str) -> bool:
    if isinstance(value, bool) and expected in ("integer", "number"):
        return False
    return isinstance(value, _TYPES.get(expected, (object,)))


def _kind_of(value: object) -> str:
    for name, types in _TYPES.items():
        if isinstance(value, types) and not (isinstance(value, bool) and name in ("integer", "number")):
            return name
    return "null"


def schema_nodes(schema: Schema, value: Any, path: FieldPath = ()) -> Iterator[tuple[Schema, Any, FieldPath]]:
    """Every (schema, value, path) of the present parts of value, parents first: where CEL rules apply."""
    yield schema, value, path
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, item in value.items():
            child = properties.get(name) or _map_values(schema)
            if child is not None and (not child.get("type") or _has_type(item, child["type"])):
                yield from schema_nodes(child, item, (*path, name))
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for position, item in enumerate(value):
            if not schema["items"].get("type") or _has_type(item, schema["items"]["type"]):
                yield from schema_nodes(schema["items"], item, (*path, position))
