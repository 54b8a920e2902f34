"""`payguard graph`: SVG and PNG drawn without a system binary, DOT and Mermaid text, from the examples."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from PIL import Image

from payguard.cli import main

REPO = Path(__file__).resolve().parents[2]
CHECKOUT = REPO / "examples" / "checkout.yaml"
WORKLOADS = [w["name"] for w in yaml.safe_load(CHECKOUT.read_text())["spec"]["workloads"]]


def test_svg_names_every_workload_caller_and_network(tmp_path: Path) -> None:
    out = tmp_path / "checkout.svg"
    assert main(["graph", "-f", str(CHECKOUT), "-o", str(out)]) == 0
    texts = {t.text for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}text")}
    assert set(WORKLOADS) <= texts
    assert {"istio-ingress/istio-ingressgateway", "monitoring/prometheus", "203.0.113.0/24"} <= texts
    assert "8443 GET,POST /v1/orders /v1/orders/*" in texts  # edges carry ports and L7 operations


def test_png_is_a_valid_image(tmp_path: Path) -> None:
    out = tmp_path / "checkout.png"
    assert main(["graph", "-f", str(CHECKOUT), "-o", str(out)]) == 0
    with Image.open(out) as image:
        image.verify()
        assert image.format == "PNG"
        assert image.size[0] > 1000


def test_dot_and_mermaid_hold_the_edges_and_highlight_namespace_wide_admission(tmp_path: Path) -> None:
    main(["graph", "-f", str(CHECKOUT), "-o", str(tmp_path / "g.dot")])
    main(["graph", "-f", str(CHECKOUT), "-o", str(tmp_path / "g.mmd")])
    dot, mermaid = (tmp_path / "g.dot").read_text(), (tmp_path / "g.mmd").read_text()
    assert dot.startswith("digraph payguard {")
    assert 'tooltip="L3 admits the whole namespace"' in dot
    assert mermaid.startswith("flowchart LR")
    assert '|"443"|' in mermaid
    assert mermaid.count("linkStyle") == 2  # the two principal callers


def test_the_readme_picture_is_the_current_drawing(tmp_path: Path) -> None:
    out = tmp_path / "checkout.svg"
    main(["graph", "-f", str(CHECKOUT), "-o", str(out)])
    assert out.read_text() == (REPO / "docs" / "checkout.svg").read_text(), (
        "rerun: payguard graph -o docs/..."
    )


def test_unknown_output_format_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "-f", str(CHECKOUT), "-o", str(tmp_path / "g.pdf")]) == 2
    assert ".svg, .png" in capsys.readouterr().err
