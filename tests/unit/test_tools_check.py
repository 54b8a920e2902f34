"""`payguard check`: the CRD's own schema and CEL rules offline, every error at once with file:line.

Parity with the API server is proven in tests/integration/test_check_parity.py; here: the examples, the
table of invalid manifests offline, several mistakes in one file, exit codes and JSON output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from integration.test_crd_validation import INVALID, Mutation, valid_manifest
from payguard.cli import main
from payguard.tools.check import check_document
from payguard.tools.sources import Document

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def test_packaged_crd_is_the_crd() -> None:
    # `make chart-crds` copies it; check must read the very schema the API server enforces.
    packaged = REPO / "operator" / "payguard" / "tools" / "paymentservice-crd.yaml"
    assert packaged.read_text() == (REPO / "crds" / "paymentservice.yaml").read_text()


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_is_valid(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-f", str(example)]) == 0
    assert capsys.readouterr().out.endswith("1 PaymentService(s) checked, 0 error(s): valid\n")


@pytest.mark.parametrize(("mutation", "field", "fragment"), INVALID)
def test_check_refuses_each_invalid_manifest_naming_the_field(
    mutation: Mutation, field: str, fragment: str
) -> None:
    body = valid_manifest()
    mutation(body)
    findings = check_document(Document("checkout.yaml", 0, body), namespace="payments")
    said = [f"{finding.field}: {finding.message}" for finding in findings]
    assert all(finding.refused_by == "admission" for finding in findings), said
    assert any(field in text and fragment in text for text in said), said


THREE_MISTAKES = """\
apiVersion: payguard.dev/v1alpha1
kind: PaymentService
metadata:
  name: checkout
  namespace: payments
spec:
  pciScope: cde
  workloads:
    - name: api
      selector: {app: api}
      serviceAccount: default
      ports:
        - {name: https, port: 0}
      egress:
        - cidr: 0.0.0.0/0
          ports: [443]
  certificates:
    issuerRef: {name: payments-ca}
"""


def test_a_file_with_three_mistakes_reports_three_errors_with_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "three.yaml"
    path.write_text(THREE_MISTAKES)

    assert main(["check", "-f", str(path), "-o", "json"]) == 1

    report = json.loads(capsys.readouterr().out)
    found = {(f["line"], f["field"]) for f in report["findings"]}
    assert found == {
        (11, "spec.workloads[0].serviceAccount"),
        (13, "spec.workloads[0].ports[0].port"),
        (15, "spec.workloads[0].egress[0].cidr"),
    }
    assert report["checked"] == 1


def test_text_output_names_file_and_line_of_each_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "three.yaml"
    path.write_text(THREE_MISTAKES)
    assert main(["check", "-f", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:13: checkout: spec.workloads[0].ports[0].port: Invalid value: 0" in out
    assert out.endswith("1 PaymentService(s) checked, 3 error(s): invalid\n")


def test_a_misspelt_field_is_an_error_not_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(THREE_MISTAKES.replace("pciScope: cde", "enforcment: Audit"))
    findings = check_document(Document(str(path), 0, yaml.safe_load(path.read_text())), namespace=None)
    assert ("spec.enforcment", "field not declared in schema") in {(f.field, f.message) for f in findings}


def test_what_only_the_operator_refuses_is_reported_as_such() -> None:
    body = valid_manifest()
    # A caller naming our own workload's identity by principal: needs the namespace, so no CRD rule has it.
    body["spec"]["workloads"][1]["callers"][0] = {
        "principal": {"namespace": "payments", "serviceAccount": "api-gateway"}
    }
    (finding,) = check_document(Document("x.yaml", 0, body), namespace="payments")
    assert (finding.field, finding.refused_by) == ("spec.workloads[1].callers[0].principal", "operator")


def test_exit_codes_distinguish_invalid_from_unusable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: PaymentService\nspec: [unclosed\n")
    assert main(["check", "-f", str(broken)]) == 1
    assert f"{broken}:" in capsys.readouterr().out
    assert main(["check", "-f", str(tmp_path / "missing.yaml")]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["check"])
    assert usage.value.code == 2


def test_an_enum_error_stops_the_rules_as_the_api_server_does() -> None:
    body = valid_manifest()
    body["spec"]["pciScope"] = "pan"
    body["spec"]["workloads"][0]["serviceAccount"] = "default"  # a CEL rule: not evaluated after the enum
    findings = check_document(Document("x.yaml", 0, body), namespace="payments")
    assert [f.field for f in findings] == ["spec.pciScope", "<root>"]


def test_a_type_error_stops_the_rules_as_the_api_server_does() -> None:
    body = valid_manifest()
    body["spec"]["workloads"][0]["ports"][0]["port"] = "8443"
    findings = check_document(Document("x.yaml", 0, body), namespace="payments")
    assert findings[0].field == "spec.workloads[0].ports[0].port"
    assert "must be of type integer" in findings[0].message
    assert "some validation rules were not checked" in findings[-1].message
