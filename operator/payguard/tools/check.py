"""Owns `payguard check`: offline validation with admission's outcome. Each PaymentService is defaulted and
checked against the CRD's schema and CEL rules (read from the CRD itself), then read by the operator's own
parser for what only the operator checks; every finding names the file, line and field."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from payguard.model import InvalidSpec
from payguard.spec import parse_payment_service
from payguard.tools.celrules import RuleViolation, rule_violations
from payguard.tools.render import add_input_arguments, with_default_namespace
from payguard.tools.schema import crd_schema, structural_violations, with_defaults
from payguard.tools.sources import (
    Document,
    FieldPath,
    SourceError,
    path_keys,
    path_text,
    read_documents,
)

# Who would refuse the manifest: the API server at `kubectl apply`, or the operator (Ready=False InvalidSpec).
ADMISSION = "admission"
OPERATOR = "operator"
# The API server's words when a blocking error (required, enum, too long, too many, type) stops the rules.
_SKIPPED_RULES = (
    "Invalid value: null: some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    document: int
    name: str
    field: str
    message: str
    refused_by: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.name}: {self.field}: {self.message} [{self.refused_by}]"


def check_documents(documents: Sequence[Document], *, namespace: str | None) -> tuple[list[Finding], int]:
    """Every finding over the PaymentServices of the documents, and how many PaymentServices were read."""
    findings: list[Finding] = []
    checked = 0
    for document in documents:
        if not document.is_payment_service:
            continue
        checked += 1
        findings += check_document(document, namespace=namespace)
    return findings, checked


def check_document(document: Document, *, namespace: str | None) -> list[Finding]:
    body = with_default_namespace(document.body, namespace)
    name = _name_of(body)

    def finding(
        keys: FieldPath, message: str, refused_by: str = ADMISSION, *, line_at: FieldPath | None = None
    ) -> Finding:
        return Finding(
            file=document.source,
            line=document.line_of(keys if line_at is None else line_at),
            document=document.index,
            name=name,
            field=path_text(keys) or "<root>",
            message=message,
            refused_by=refused_by,
        )

    schema = crd_schema()
    defaulted = with_defaults(schema, body)
    structural = structural_violations(schema, defaulted)
    findings = [finding(violation.path, violation.message) for violation in structural]
    refusal = _operator_refusal(defaulted)
    if any(violation.blocking for violation in structural):
        findings.append(finding((), _SKIPPED_RULES))
    else:
        for violation in rule_violations(schema, defaulted):
            line_at, message = _worded(violation, refusal)
            findings.append(finding(violation.path, message, line_at=line_at))
    if not findings and refusal is not None:
        findings.append(finding(path_keys(refusal.path), refusal.message, OPERATOR))
    return findings


def _operator_refusal(body: dict[str, Any]) -> InvalidSpec | None:
    try:
        parse_payment_service(body)
    except InvalidSpec as error:
        return error
    return None


def _worded(violation: RuleViolation, refusal: InvalidSpec | None) -> tuple[FieldPath, str]:
    """Where to point and what to say for a failed rule: its own message; when this runtime cannot evaluate
    its messageExpression (a rule on a whole list), the parser's words for the item inside that list (it
    mirrors every rule), as admission words them; else Kubernetes' own fallback `failed rule: ...`."""
    if violation.message is None and refusal is not None:
        refused = path_keys(refusal.path)
        if refused[: len(violation.path)] == violation.path:
            return refused, f"Invalid value: {refusal.path}: {refusal.message}"
    return violation.path, violation.text()


def _name_of(body: dict[str, Any]) -> str:
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return str(name) if name else "<unnamed>"


def format_findings(findings: Sequence[Finding], *, checked: int, output: str) -> str:
    if output == "json":
        return json.dumps({"checked": checked, "findings": [asdict(f) for f in findings]}, indent=2) + "\n"
    lines = [str(finding) for finding in findings]
    verdict = "invalid" if findings else "valid"
    lines.append(f"{checked} PaymentService(s) checked, {len(findings)} error(s): {verdict}")
    return "\n".join(lines) + "\n"


SUMMARY = "validate PaymentServices offline, with the same outcome as the API server's admission"
EXAMPLES = """exit status: 0 valid, 1 invalid, 2 usage error (e.g. a file that cannot be read)

examples:
  payguard check -f examples/
  payguard check -f payments/checkout.yaml -o json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="json: for CI annotations"
    )


def main(args: argparse.Namespace) -> int:
    try:
        documents = read_documents(args.filename)
    except SourceError as error:
        if error.unreadable:
            print(f"payguard check: {error}", file=sys.stderr)
            return 2
        finding = Finding(
            file=error.source,
            line=error.line,
            document=0,
            name="<unparsed>",
            field="<root>",
            message=error.message,
            refused_by=ADMISSION,
        )
        sys.stdout.write(format_findings([finding], checked=0, output=args.output))
        return 1
    findings, checked = check_documents(documents, namespace=args.namespace)
    sys.stdout.write(format_findings(findings, checked=checked, output=args.output))
    return 1 if findings else 0
