"""`payguard render`: the operator's own renderer behind a command, byte for byte the golden manifests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from payguard.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent / "golden"
FIXED_UID = "00000000-0000-0000-0000-000000000001"


def with_uid(example: Path, tmp_path: Path) -> Path:
    """The example as the API server would hand it to the operator: with the uid the goldens carry."""
    body = yaml.safe_load(example.read_text())
    body["metadata"]["uid"] = FIXED_UID
    path = tmp_path / example.name
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_render_prints_the_golden_manifests_of_every_example(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "-f", str(with_uid(example, tmp_path))]) == 0
    assert capsys.readouterr().out == (GOLDEN / example.name).read_text()


def test_render_of_a_directory_renders_every_payment_service_in_file_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["render", "-f", str(REPO / "examples")]) == 0
    children = list(yaml.safe_load_all(capsys.readouterr().out))
    services = list(dict.fromkeys(c["metadata"]["labels"]["payguard.dev/payment-service"] for c in children))
    expected = [yaml.safe_load(p.read_text())["metadata"]["name"] for p in EXAMPLES]
    assert services == expected


def test_json_output_holds_the_same_children_and_is_stable(capsys: pytest.CaptureFixture[str]) -> None:
    checkout = str(REPO / "examples" / "checkout.yaml")
    main(["render", "-f", checkout])
    as_yaml = list(yaml.safe_load_all(capsys.readouterr().out))
    main(["render", "-f", checkout, "-o", "json"])
    first = capsys.readouterr().out
    main(["render", "-f", checkout, "-o", "json"])
    assert capsys.readouterr().out == first
    listed = json.loads(first)
    assert listed["kind"] == "List"
    assert listed["items"] == as_yaml


def test_namespace_flag_fills_in_only_a_missing_namespace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text())
    del body["metadata"]["namespace"]
    path = tmp_path / "no-namespace.yaml"
    path.write_text(yaml.safe_dump(body))
    main(["render", "-f", str(path), "-n", "team-a", "-f", str(REPO / "examples" / "checkout.yaml")])
    namespaces = {c["metadata"]["namespace"] for c in yaml.safe_load_all(capsys.readouterr().out)}
    assert namespaces == {"team-a", "payments"}


def test_render_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO((REPO / "examples" / "minimal.yaml").read_text()))
    assert main(["render", "-f", "-"]) == 0
    kinds = [c["kind"] for c in yaml.safe_load_all(capsys.readouterr().out)]
    assert kinds == ["PeerAuthentication", "AuthorizationPolicy", "NetworkPolicy", "Certificate"]


def test_platform_flags_move_the_essential_egress_like_the_operator_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(
        [
            "render",
            "-f",
            str(REPO / "examples" / "minimal.yaml"),
            "--dns",
            "openshift-dns/dns.operator.openshift.io/daemonset-dns=default",
        ]
    )
    (policy,) = [c for c in yaml.safe_load_all(capsys.readouterr().out) if c["kind"] == "NetworkPolicy"]
    dns = policy["spec"]["egress"][-2]["to"][0]["namespaceSelector"]["matchLabels"]
    assert dns == {"kubernetes.io/metadata.name": "openshift-dns"}


def test_an_invalid_payment_service_is_refused_naming_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        (REPO / "examples" / "minimal.yaml")
        .read_text()
        .replace("serviceAccount: key-rotator", "serviceAccount: default")
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["render", "-f", str(path)]) == 1
    captured = capsys.readouterr()
    line = text.splitlines().index("      serviceAccount: default") + 1
    assert f"{path}:{line}: spec.workloads[0].serviceAccount" in captured.err
    assert captured.out == ""
