"""Owns what an evidence bundle says (pure): PCI-DSS v4.0 requirements -> payguard's controls -> the live
objects that implement them, each with a sha256 of its canonical spec, the conditions with their times,
certificate summaries, exceptions and payguard's drift and repair Events.

It sees only what the gatherer hands it, and copies from each object only named public fields, so no
Secret, private key or token can reach a bundle even if one were handed in.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from payguard.kinds import PCI_REQUIREMENTS_ANNOTATION, RENDERED_HASH_ANNOTATION, WORKLOAD_LABEL
from payguard.model import DriftPolicy, Enforcement, PaymentService
from payguard.platform import Platform
from payguard.posture.certificates import parse_issued_certificate
from payguard.posture.requests import pair_requests
from payguard.render.metadata import ChildKind
from payguard.tools.callgraph import call_graph

FORMAT_VERSION = "payguard.dev/evidence/v1"


@dataclass(frozen=True)
class Requirement:
    id: str
    title: str
    control: str
    conditions: tuple[str, ...]
    kinds: tuple[str, ...]  # whose objects carry the control; unreadable, the requirement is not met
    in_status: bool = True  # the operator reports it in status.pciRequirements when its controls are in place


# Short titles of the PCI-DSS v4.0 requirements the controls support; the standard's text is the reference.
TITLES = {
    "1.2.1": "Configuration standards for network security controls are defined and implemented",
    "1.3.1": "Inbound traffic to the cardholder data environment is restricted to what is necessary",
    "1.3.2": "Outbound traffic from the cardholder data environment is restricted to what is necessary",
    "3.6.1": "Cryptographic keys are protected against disclosure and misuse",
    "4.2.1": "Strong cryptography protects account data during transmission over networks",
    "7.2.1": "Access is defined by need to know",
    "7.2.2": "Access is assigned by least privilege",
    "8.3.2": "Strong cryptography protects authentication factors in transmission",
    "10.2.1": "Audit logs record the events that matter to security",
    "10.7.2": "Failures of critical security controls are detected, alerted and addressed",
}
# What each kind of child does, the conditions that say whether it holds, and what else must be read.
CONTROLS = {
    ChildKind.NETWORK_POLICY: (
        "default-deny NetworkPolicy per workload: only the declared callers and egress",
        ("NetworkIsolated",),
        (),
    ),
    ChildKind.PEER_AUTHENTICATION: (
        "PeerAuthentication STRICT per workload: mutual TLS only, every pod in the mesh",
        ("MTLSStrict", "MeshEnrolled"),
        (),
    ),
    ChildKind.AUTHORIZATION_POLICY: (
        "AuthorizationPolicy per workload: only the declared identities, ports, methods and paths",
        ("AuthorizationEnforced", "LeastPrivilege"),
        (),
    ),
    ChildKind.CERTIFICATE: (
        "cert-manager Certificate per workload: issuer, key, validity and renewal from the spec",
        ("CertificatesReady",),
        ("CertificateRequest",),
    ),
}
# The operator's own part, no child kind: drift detected, repaired or reported, and told as Events.
OPERATOR_CONTROL = (
    "payguard detects drift of every control, repairs or reports it and posts Events; conditions carry "
    "the time of each change"
)


def requirements_table() -> tuple[Requirement, ...]:
    """One row per requirement, from the render package's table of requirements per kind."""
    ids = sorted(
        {r for kind in ChildKind for r in kind.pci_requirements},
        key=lambda text: tuple(int(part) for part in text.split(".")),
    )
    table = []
    for requirement in ids:
        kinds = [kind for kind in ChildKind if requirement in kind.pci_requirements]
        controls = [CONTROLS[kind] for kind in kinds]
        table.append(
            Requirement(
                requirement,
                TITLES.get(requirement, ""),
                "; ".join(control for control, _, _ in controls),
                tuple(dict.fromkeys(c for _, conditions, _ in controls for c in conditions)),
                tuple(dict.fromkeys([*kinds, *(k for _, _, extra in controls for k in extra)])),
            )
        )
    for requirement in ("10.2.1", "10.7.2"):
        table.append(
            Requirement(
                requirement, TITLES[requirement], OPERATOR_CONTROL, ("InSync", "Ready"), ("Event",), False
            )
        )
    return tuple(table)


REQUIREMENTS = requirements_table()

CONDITION_FIELDS = ("type", "status", "reason", "message", "lastTransitionTime", "observedGeneration")
EVENT_FIELDS = ("type", "reason", "action", "note", "reportingController")


def canonical_sha256(value: Any) -> str:
    """sha256 of the value as sorted, compact JSON: an auditor can recompute it from evidence.json."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def live_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The public record of one child: identity, the spec and its hash; never its annotations at large."""
    metadata = obj.get("metadata") or {}
    labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
    spec = obj.get("spec") or {}
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "namespace": metadata.get("namespace"),
        "name": metadata.get("name"),
        "uid": metadata.get("uid"),
        "resourceVersion": metadata.get("resourceVersion"),
        "workload": labels.get(WORKLOAD_LABEL),
        "renderedHash": annotations.get(RENDERED_HASH_ANNOTATION),
        "pciRequirements": [r for r in annotations.get(PCI_REQUIREMENTS_ANNOTATION, "").split(",") if r],
        "specSha256": canonical_sha256(spec),
        "spec": spec,
    }


def certificate_summary(
    certificate: Mapping[str, Any], requests: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Issuer, serial and validity from the Certificate's status and its revision's request (public)."""
    metadata, spec = certificate.get("metadata") or {}, certificate.get("spec") or {}
    status = certificate.get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    summary: dict[str, Any] = {
        "name": metadata.get("name"),
        "workload": (metadata.get("labels") or {}).get(WORKLOAD_LABEL),
        "issuerRef": spec.get("issuerRef"),
        "secretName": spec.get("secretName"),  # the name only: payguard never reads the Secret
        "uris": spec.get("uris"),
        "duration": spec.get("duration"),
        "renewBefore": spec.get("renewBefore"),
        "ready": {k: ready.get(k) for k in ("status", "reason", "message", "lastTransitionTime")},
        "revision": status.get("revision"),
        "renewalTime": status.get("renewalTime"),
    }
    # The request of the Certificate's status.revision, as the posture judges it (never "the newest").
    request = pair_requests(
        requests, certificate_name=str(metadata.get("name")), certificate=certificate
    ).current
    encoded = ((request or {}).get("status") or {}).get("certificate")
    if request is None or not encoded:
        summary["issued"] = None
        return summary
    try:
        issued = parse_issued_certificate(encoded)
        issuer = _issuer_name(encoded)
    except ValueError as error:
        summary["issued"] = {"error": f"unreadable certificate: {error}"}
        return summary
    summary["issued"] = {
        "request": request["metadata"].get("name"),
        "serialNumber": issued.serial_number,
        "issuer": issuer,
        "notBefore": issued.not_before.isoformat(),
        "notAfter": issued.not_after.isoformat(),
        "keyAlgorithm": issued.key_algorithm,
        "keySize": issued.key_size,
        "uris": list(issued.uris),
    }
    return summary


def _issuer_name(encoded: str) -> str:
    pem = base64.b64decode(encoded, validate=True)
    return x509.load_pem_x509_certificates(pem)[0].issuer.rfc4514_string()


def exceptions_of(service: PaymentService) -> list[dict[str, str]]:
    """Where the controls are knowingly weaker than full enforcement, for the auditor to weigh."""
    found = []
    if service.enforcement is Enforcement.AUDIT:
        found.append(
            {
                "what": "enforcement: Audit",
                "effect": "no PeerAuthentication or NetworkPolicy is written; AuthorizationPolicies are "
                "dry-run: nothing blocks traffic",
            }
        )
    if service.drift_policy is DriftPolicy.REPORT:
        found.append({"what": "driftPolicy: Report", "effect": "drift is reported, not repaired"})
    # The platform essentials every workload reaches are no exception: their location does not matter here.
    graph = call_graph([service], platform=Platform())
    for edge in graph.edges:
        source, target = graph.nodes[edge.source], graph.nodes[edge.target]
        if edge.highlight:
            what = f"{source.label.splitlines()[0]} -> {target.label.splitlines()[0]} ({edge.label})"
            found.append({"what": what, "effect": edge.highlight})
        elif target.kind == "network":
            found.append({"what": f"egress to {target.label} ({edge.label})", "effect": "leaves the cluster"})
    return found


def events_of(events: Sequence[Mapping[str, Any]], *, service_name: str) -> list[dict[str, Any]]:
    """payguard's Events about this PaymentService, oldest first, with when and how often."""
    chosen = []
    for event in events:
        regarding = event.get("regarding") or {}
        if regarding.get("kind") != "PaymentService" or regarding.get("name") != service_name:
            continue
        entry = {k: event.get(k) for k in EVENT_FIELDS}
        series = event.get("series") or {}
        entry["time"] = (
            series.get("lastObservedTime") or event.get("eventTime") or event.get("deprecatedLastTimestamp")
        )
        entry["count"] = series.get("count") or event.get("deprecatedCount") or 1
        chosen.append(entry)
    return sorted(chosen, key=lambda e: (str(e["time"] or ""), str(e["reason"])))


def evidence_of(
    body: Mapping[str, Any],
    service: PaymentService,
    *,
    children: Sequence[Mapping[str, Any]],
    requests: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    collected_at: str,
    tool_version: str,
    unobserved: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole evidence document of one PaymentService. `unobserved`: kind -> why it could not be read;
    a requirement whose objects could not be read is not met, whatever the conditions say."""
    unobserved = dict(unobserved or {})
    metadata, status = body.get("metadata") or {}, body.get("status") or {}
    objects = sorted((live_object(c) for c in children), key=lambda o: (o["kind"], o["name"]))
    conditions = [{k: c.get(k) for k in CONDITION_FIELDS} for c in status.get("conditions") or []]
    by_type = {c["type"]: c for c in conditions}
    in_place = status.get("pciRequirements")
    requirements = []
    for requirement in REQUIREMENTS:
        held = [
            by_type.get(t) or {"type": t, "status": "Unknown", "message": "not reported"}
            for t in requirement.conditions
        ]
        # The operator's word that every object of the kinds is in place and enforcing (None: not said).
        reported = (requirement.id in in_place) if requirement.in_status and in_place is not None else None
        requirements.append(
            {
                "id": requirement.id,
                "title": requirement.title,
                "control": requirement.control,
                "met": all(c.get("status") == "True" for c in held)
                and reported is not False
                and not (requirement.in_status and in_place is None)
                and not any(kind in unobserved for kind in requirement.kinds),
                "inPlace": reported,
                "unobserved": {k: v for k, v in unobserved.items() if k in requirement.kinds},
                "conditions": held,
                "objects": [
                    {k: o[k] for k in ("kind", "name", "workload", "specSha256")}
                    for o in objects
                    if o["kind"] in requirement.kinds
                ],
            }
        )
    return {
        "format": FORMAT_VERSION,
        "collectedAt": collected_at,
        "tool": f"payguard {tool_version}",
        "paymentService": {
            "namespace": metadata.get("namespace"),
            "name": metadata.get("name"),
            "uid": metadata.get("uid"),
            "generation": metadata.get("generation"),
            "observedGeneration": status.get("observedGeneration"),
            "pciScope": service.pci_scope.value,
            "pciRequirementsInPlace": status.get("pciRequirements"),
            "enforcement": service.enforcement.value,
            "driftPolicy": service.drift_policy.value,
            "specSha256": canonical_sha256(body.get("spec") or {}),
        },
        "requirements": requirements,
        "conditions": conditions,
        "objects": objects,
        "certificates": [
            certificate_summary(c, requests)
            for c in sorted(
                (c for c in children if c.get("kind") == "Certificate"), key=lambda c: c["metadata"]["name"]
            )
        ],
        "exceptions": exceptions_of(service),
        "unobserved": unobserved,
        "events": events_of(events, service_name=str(metadata.get("name"))),
    }
