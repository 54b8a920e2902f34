"""`payguard evidence`, the pure part: requirements -> controls -> objects with recomputable hashes,
certificate summaries from the signed request, exceptions, Events, and a bundle whose checksums verify."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import pki
from payguard.cli import main
from payguard.kinds import CERTIFICATE_NAME_ANNOTATION, CERTIFICATE_REVISION_ANNOTATION
from payguard.platform import Platform
from payguard.render import render_children
from payguard.render.metadata import ChildKind
from payguard.spec import parse_payment_service
from payguard.tools.bundle import SUMS, UnsafeBundleError, bundle_files
from payguard.tools.pci import canonical_sha256, evidence_of

REPO = Path(__file__).resolve().parents[2]
UID = "00000000-0000-0000-0000-000000000001"
NOW = datetime.datetime.now(datetime.UTC)


def service_body(example: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO / "examples" / example).read_text())
    body["metadata"] |= {"uid": UID, "generation": 2, "namespace": body["metadata"].get("namespace", "pay")}
    body["status"] = {
        "observedGeneration": 2,
        "pciRequirements": ["1.2.1", "1.3.1", "1.3.2", "7.2.1", "7.2.2"],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Reconciled",
                "message": "ok",
                "lastTransitionTime": "t0",
            },
            {
                "type": "NetworkIsolated",
                "status": "True",
                "reason": "Enforced",
                "message": "",
                "lastTransitionTime": "t1",
            },
            {
                "type": "MTLSStrict",
                "status": "False",
                "reason": "NotStrict",
                "message": "x",
                "lastTransitionTime": "t2",
            },
        ],
    }
    return body


def signed_request(certificate_name: str, revision: int, serial: int) -> dict[str, Any]:
    ca = pki.authority("evidence test CA", not_before=NOW, not_after=NOW + datetime.timedelta(days=1))
    leaf = ca.issue(
        pki.private_key("ECDSA").public_key(),
        uris=["spiffe://cluster.local/ns/payments/sa/x"],
        not_before=NOW,
        not_after=NOW + datetime.timedelta(hours=24),
        serial=serial,
    )
    return {
        "metadata": {
            "name": f"{certificate_name}-{revision}",
            "annotations": {
                CERTIFICATE_NAME_ANNOTATION: certificate_name,
                CERTIFICATE_REVISION_ANNOTATION: str(revision),
            },
        },
        "status": {"certificate": pki.b64(pki.pem(leaf, ca.certificate))},
    }


def evidence(
    example: str = "checkout.yaml",
    in_place: Any = ...,
    statuses: dict[str, dict[str, Any]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """`statuses`: a status per child name, as cert-manager writes a Certificate's."""
    body = service_body(example)
    if in_place is None:
        del body["status"]["pciRequirements"]
    elif in_place is not ...:
        body["status"]["pciRequirements"] = in_place
    service = parse_payment_service(body)
    children = [
        {**child, "metadata": {**child["metadata"], "resourceVersion": "7", "uid": f"uid-{index}"}}
        for index, child in enumerate(render_children(service, platform=Platform()))
    ]
    children = [
        child | {"status": (statuses or {})[child["metadata"]["name"]]}
        if child["metadata"]["name"] in (statuses or {})
        else child
        for child in children
    ]
    arguments: dict[str, Any] = {
        "children": children,
        "requests": [],
        "events": [],
        "collected_at": "2026-12-01T00:00:00Z",
        "tool_version": "test",
    } | overrides
    return evidence_of(body, service, **arguments)


def test_every_requirement_of_the_kinds_table_maps_to_its_controls_and_their_conditions() -> None:
    found = {r["id"]: r for r in evidence()["requirements"]}
    from_kinds = {r for kind in ChildKind for r in kind.pci_requirements}
    assert set(found) == from_kinds | {"10.2.1", "10.7.2"}
    assert {"1", "3", "4", "7", "10"} <= {requirement.split(".")[0] for requirement in found}
    network = found["1.3.1"]
    assert (network["met"], network["inPlace"]) == (True, True)
    assert {o["kind"] for o in network["objects"]} == {"NetworkPolicy"}
    assert len(network["objects"]) == 4  # one per workload of checkout
    transit = found["4.2.1"]
    assert transit["met"] is False  # MTLSStrict False, MeshEnrolled not reported, not in status
    assert {o["kind"] for o in transit["objects"]} == {"PeerAuthentication", "Certificate"}
    statuses = {c["type"]: (c["status"], c.get("lastTransitionTime")) for c in transit["conditions"]}
    assert statuses["MTLSStrict"] == ("False", "t2")
    assert statuses["MeshEnrolled"][0] == "Unknown"
    assert "CertificatesReady" in statuses


def test_a_requirement_is_met_only_where_the_operator_reports_it_in_place() -> None:
    def network(**kwargs: Any) -> dict[str, Any]:
        return {r["id"]: r for r in evidence(**kwargs)["requirements"]}["1.2.1"]

    assert network()["met"] is True
    assert (network(in_place=[])["met"], network(in_place=[])["inPlace"]) == (False, False)
    assert (network(in_place=None)["met"], network(in_place=None)["inPlace"]) == (False, None)


def test_each_objects_hash_is_recomputable_from_its_spec_in_the_document() -> None:
    document = evidence()
    assert document["objects"]
    for obj in document["objects"]:
        again = hashlib.sha256(json.dumps(obj["spec"], sort_keys=True, separators=(",", ":")).encode())
        assert obj["specSha256"] == again.hexdigest()
        assert obj["renderedHash"]  # the operator's annotation, to match against render
        assert obj["pciRequirements"] == list(ChildKind(obj["kind"]).pci_requirements)
    assert document["paymentService"]["specSha256"] == canonical_sha256(service_body("checkout.yaml")["spec"])


def test_certificates_summarise_the_request_of_the_status_revision_serial_issuer_and_validity() -> None:
    name = "checkout-api-gateway"
    requests = [
        signed_request(name, 1, 0xA1),
        signed_request(name, 2, 0xB2),
        signed_request(name, 3, 0xD4),  # signed, but cert-manager has not stored it yet
        signed_request("other", 9, 0xC3),
    ]
    statuses = {name: {"revision": 2}}
    certificates = {c["name"]: c for c in evidence(requests=requests, statuses=statuses)["certificates"]}
    issued = certificates[name]["issued"]
    assert issued["serialNumber"] == "b2"
    assert issued["issuer"] == "CN=evidence test CA"
    assert issued["notAfter"] > issued["notBefore"]
    assert certificates[name]["issuerRef"]["name"] == "payments-ca"
    assert certificates["checkout-order-service"]["issued"] is None  # no signed request yet


def test_exceptions_name_audit_mode_namespace_wide_admission_and_external_egress() -> None:
    audit = [e["what"] for e in evidence("audit-mode.yaml")["exceptions"]]
    assert "enforcement: Audit" in audit
    checkout = evidence()["exceptions"]
    assert any(e["effect"] == "L3 admits the whole namespace" for e in checkout)
    assert any(e["what"].startswith("egress to ") for e in checkout)
    report_only = [e["what"] for e in evidence("report-only-drift.yaml")["exceptions"]]
    assert "driftPolicy: Report" in report_only


def test_events_are_those_about_this_payment_service_oldest_first() -> None:
    def event(name: str, time: str, reason: str) -> dict[str, Any]:
        return {
            "regarding": {"kind": "PaymentService", "name": name},
            "eventTime": time,
            "reason": reason,
            "type": "Warning",
            "note": f"{reason} note",
        }

    events = [event("checkout", "2026-12-01T10:00:00Z", "DriftReverted"), event("other", "t", "X")]
    events.append(event("checkout", "2026-12-01T09:00:00Z", "ConditionFalse"))
    listed = evidence(events=events)["events"]
    assert [e["reason"] for e in listed] == ["ConditionFalse", "DriftReverted"]


def test_bundle_checksums_verify_and_the_report_names_every_requirement() -> None:
    document = evidence()
    files = bundle_files(document)
    assert list(files) == ["evidence.json", "report.html", SUMS]
    for line in files[SUMS].decode().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256(files[name]).hexdigest() == digest
    report = files["report.html"].decode()
    for requirement in document["requirements"]:
        assert f"<td>{requirement['id']}</td>" in report
    assert "NOT MET" in report  # 4.2.1 with MTLSStrict False
    assert json.loads(files["evidence.json"]) == document


def test_the_report_escapes_what_it_quotes() -> None:
    document = evidence(
        events=[{"regarding": {"kind": "PaymentService", "name": "checkout"}, "note": "<script>x</script>"}]
    )
    report = bundle_files(document)["report.html"].decode()
    assert "<script>" not in report
    assert "&lt;script&gt;" in report


def test_a_bundle_that_would_carry_a_private_key_is_refused() -> None:
    leaked = "-----BEGIN EC PRIVATE KEY-----\nMHc...\n-----END EC PRIVATE KEY-----"
    document = evidence(
        events=[{"regarding": {"kind": "PaymentService", "name": "checkout"}, "note": leaked}]
    )
    with pytest.raises(UnsafeBundleError, match="PRIVATE KEY"):
        bundle_files(document)


def test_evidence_is_only_live_and_needs_an_output_directory(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["evidence", "-o", "out"], ["evidence", "--live"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    assert "--live" in capsys.readouterr().err


def test_a_kind_that_could_not_be_read_fails_its_requirement_and_says_why() -> None:
    why = "List networkpolicies.networking.k8s.io failed (403): forbidden"
    assert {r["id"]: r["met"] for r in evidence()["requirements"]}["1.3.1"] is True
    document = evidence(unobserved={"NetworkPolicy": why})
    found = {r["id"]: r for r in document["requirements"]}
    assert found["1.3.1"]["met"] is False  # NetworkIsolated=True is not enough unseen
    assert found["1.3.1"]["unobserved"] == {"NetworkPolicy": why}
    assert found["7.2.1"]["unobserved"] == {}
    assert why in bundle_files(document)["report.html"].decode()
