"""`kubectl explain paymentservice...` helps an on-call engineer: every field of the CRD's spec and status,
and the items of every list, carries a description (the API server publishes it in its OpenAPI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "paymentservice.yaml"


def schema_nodes(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below `path`: properties, list items and map values that are objects."""
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{key}")
    if "items" in node:
        yield from schema_nodes(node["items"], f"{path}[]")
    values = node.get("additionalProperties")
    if isinstance(values, dict) and "properties" in values:
        yield from schema_nodes(values, f"{path}{{}}")


def test_every_spec_and_status_field_has_a_description() -> None:
    crd = yaml.safe_load(CRD.read_text())
    [version] = crd["spec"]["versions"]
    root = version["schema"]["openAPIV3Schema"]
    nodes = [n for part in ("spec", "status") for n in schema_nodes(root["properties"][part], part)]
    assert len(nodes) > 80  # the walk reaches the leaves, not just the top
    missing = [path for path, node in nodes if not str(node.get("description", "")).strip()]
    assert not missing, f"fields without a description (kubectl explain shows none): {missing}"


def test_principal_port_and_issuer_fields_are_described() -> None:
    # The fields the on-call report named; kept explicit so a rename cannot silently drop them.
    crd = yaml.safe_load(CRD.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    workload = spec["workloads"]["items"]["properties"]
    principal = workload["callers"]["items"]["properties"]["principal"]["properties"]
    port = workload["ports"]["items"]["properties"]
    issuer = spec["certificates"]["properties"]["issuerRef"]["properties"]
    for field in (*principal.values(), *port.values(), *issuer.values()):
        assert field["description"]
