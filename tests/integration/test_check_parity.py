"""`payguard check` against the real API server: every manifest admission refuses, check refuses naming the
same fields; what admission accepts, check accepts. The cases are test_crd_validation's table."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from integration.test_crd_validation import INVALID, Mutation, rejection, valid_manifest
from kube import TestCluster
from payguard.tools.check import check_document
from payguard.tools.sources import Document

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
# Admission words a CEL rule on a list as `spec.workloads: Invalid value: ...: spec.workloads[1].x: ...`:
# the fields inside the message are the ones it names.
_FIELD_IN_MESSAGE = re.compile(r"\bspec(?:\.[A-Za-z]+|\[\d+\])+")


@pytest.fixture(scope="module")
def parity_namespace(cluster: TestCluster) -> Iterator[str]:
    name = cluster.create_namespace("parity")
    yield name
    cluster.delete_namespace(name)


def named_fields(cause: str) -> set[str]:
    """The fields a cause names: its own, and the more precise ones a list rule's message names."""
    field, _, message = cause.partition(": ")
    return {field, *_FIELD_IN_MESSAGE.findall(message)}


@pytest.mark.parametrize(("mutation", "field", "fragment"), INVALID)
def test_check_and_admission_refuse_the_same_manifest_at_the_same_fields(
    cluster: TestCluster, parity_namespace: str, mutation: Mutation, field: str, fragment: str
) -> None:
    body = valid_manifest()
    mutation(body)

    causes = rejection(cluster, body, parity_namespace)
    findings = check_document(Document("checkout.yaml", 0, body), namespace=parity_namespace)

    assert findings, f"admission refused, check accepted: {causes}"
    server_fields = set().union(*(named_fields(cause) for cause in causes))
    check_fields = {finding.field for finding in findings}
    assert check_fields <= server_fields | {"<root>"}, (causes, findings)
    assert any(field in cause and fragment in cause for cause in causes)
    assert any(field in f"{f.field}: {f.message}" and fragment in f.message for f in findings), findings


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_what_admission_accepts_check_accepts(cluster: TestCluster, namespace: str, path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    body["metadata"]["namespace"] = namespace
    cluster.apply(body)
    assert check_document(Document(str(path), 0, body), namespace=None) == []
