"""Owns the files of an evidence bundle (pure text): `evidence.json`, a `report.html` an auditor reads in a
browser, and `SHA256SUMS` over both, in the format `sha256sum -c` verifies."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

EVIDENCE, REPORT, SUMS = "evidence.json", "report.html", "SHA256SUMS"
# A bundle carrying any of these is refused, whatever produced it: a Secret's data, a key, a token.
FORBIDDEN = ("PRIVATE KEY-----", '"kind": "Secret"', "tls.key", '"token":')

STYLE = """body{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:4px 8px;
text-align:left;vertical-align:top;font-size:13px}th{background:#f0f0f0}.met{color:#176b2c;font-weight:bold}
.unmet{color:#b3261e;font-weight:bold}code{font-size:12px}"""


class UnsafeBundleError(Exception):
    """The bundle would carry something that looks like secret material; nothing is written."""


def bundle_files(evidence: Mapping[str, Any]) -> dict[str, bytes]:
    """File name -> content of one PaymentService's bundle, SHA256SUMS last."""
    files = {
        EVIDENCE: (json.dumps(evidence, indent=2, sort_keys=True) + "\n").encode(),
        REPORT: report_html(evidence).encode(),
    }
    for name, content in files.items():
        text = content.decode()
        for marker in FORBIDDEN:
            if marker in text:
                raise UnsafeBundleError(f"{name} would contain {marker!r}: refusing to write the bundle")
    files[SUMS] = sha256sums(files).encode()
    return files


def sha256sums(files: Mapping[str, bytes]) -> str:
    return "".join(
        f"{hashlib.sha256(content).hexdigest()}  {name}\n" for name, content in sorted(files.items())
    )


def report_html(evidence: Mapping[str, Any]) -> str:
    service = evidence["paymentService"]
    title = f"PCI-DSS evidence: PaymentService {service['namespace']}/{service['name']}"
    parts = [
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Collected {escape(str(evidence['collectedAt']))} by {escape(str(evidence['tool']))} "
        "from the live cluster. Each object's <code>specSha256</code> is the sha256 of its spec as sorted, "
        "compact JSON (recompute it from <code>evidence.json</code>); <code>SHA256SUMS</code> covers "
        "both files. The mapping of controls to requirements is payguard's; the assessor decides.</p>",
        _table(
            ["uid", "generation (observed)", "pciScope", "enforcement", "driftPolicy", "spec sha256"],
            [
                [
                    service["uid"],
                    f"{service['generation']} ({service['observedGeneration']})",
                    service["pciScope"],
                    service["enforcement"],
                    service["driftPolicy"],
                    _code(service["specSha256"]),
                ]
            ],
        ),
        "<h2>Requirements and controls</h2>",
        _table(
            ["PCI-DSS v4.0", "requirement", "control", "status", "conditions", "live objects"],
            [_requirement_row(r) for r in evidence["requirements"]],
        ),
        "<h2>Conditions</h2>",
        _table(
            ["type", "status", "reason", "since", "message"],
            [
                [c["type"], c["status"], c["reason"], c["lastTransitionTime"], c["message"]]
                for c in evidence["conditions"]
            ],
        ),
        "<h2>Certificates</h2>",
        _table(
            ["certificate", "issuer", "serial", "valid from", "valid until", "key", "ready"],
            [_certificate_row(c) for c in evidence["certificates"]],
        ),
        "<h2>Live objects</h2>",
        _table(
            ["kind", "name", "workload", "resourceVersion", "spec sha256"],
            [
                [o["kind"], o["name"], o["workload"], o["resourceVersion"], _code(o["specSha256"])]
                for o in evidence["objects"]
            ],
        ),
        "<h2>Not observed</h2>",
        _table(["kind", "why"], sorted(evidence.get("unobserved", {}).items())),
        "<h2>Exceptions</h2>",
        _table(["what", "effect"], [[e["what"], e["effect"]] for e in evidence["exceptions"]]),
        "<h2>Drift, repair and problem Events</h2>",
        _table(
            ["time", "type", "reason", "count", "note"],
            [[e["time"], e["type"], e["reason"], e["count"], e["note"]] for e in evidence["events"]],
        ),
        "</body></html>\n",
    ]
    return "\n".join(parts)


class _Code(str):
    """Already escaped HTML."""


def _code(text: Any) -> _Code:
    return _Code(f"<code>{escape(str(text))}</code>")


def _cell(value: Any) -> str:
    if isinstance(value, _Code):
        return str(value)
    return escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _requirement_row(requirement: Mapping[str, Any]) -> list[Any]:
    met = requirement["met"]
    status = _Code(f"<span class='{'met' if met else 'unmet'}'>{'met' if met else 'NOT MET'}</span>")
    conditions = "; ".join(f"{c['type']}={c['status']}" for c in requirement["conditions"])
    if requirement.get("inPlace") is not None:
        conditions += f"; in status.pciRequirements: {'yes' if requirement['inPlace'] else 'NO'}"
    objects = ", ".join(f"{o['kind']} {o['name']}" for o in requirement["objects"]) or "(Events, conditions)"
    return [requirement["id"], requirement["title"], requirement["control"], status, conditions, objects]


def _certificate_row(certificate: Mapping[str, Any]) -> list[Any]:
    issued = certificate.get("issued") or {}
    issuer_ref = certificate.get("issuerRef") or {}
    issuer = f"{issuer_ref.get('kind', 'Issuer')} {issuer_ref.get('name', '?')}"
    if issued.get("issuer"):
        issuer += f" ({issued['issuer']})"
    key = f"{issued.get('keyAlgorithm', '')} {issued.get('keySize') or ''}".strip()
    ready = certificate.get("ready") or {}
    return [
        certificate["name"],
        issuer,
        _code(issued.get("serialNumber", issued.get("error", "not issued"))),
        issued.get("notBefore"),
        issued.get("notAfter"),
        key,
        f"{ready.get('status')} {ready.get('reason') or ''}".strip(),
    ]
