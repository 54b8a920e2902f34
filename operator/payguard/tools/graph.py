"""Owns `payguard graph`: the allowed call graph of PaymentServices as SVG or PNG (drawn here with Pillow
and the standard library: no Graphviz binary needed), or as DOT or Mermaid text for docs."""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from payguard.api import ApiError
from payguard.kinds import PAYMENT_SERVICES
from payguard.model import InvalidSpec, PaymentService
from payguard.spec import parse_payment_service
from payguard.tools.callgraph import (
    ESSENTIAL,
    NETWORK,
    PRINCIPAL,
    WORKLOAD,
    CallGraph,
    call_graph,
    layered,
    to_dot,
    to_mermaid,
)
from payguard.tools.render import add_input_arguments, parse_services
from payguard.tools.sources import SourceError, read_documents

BOX_WIDTH, BOX_HEIGHT, GAP_X, GAP_Y, MARGIN, FONT_SIZE = 250, 60, 170, 36, 30, 12
FILL = {WORKLOAD: "#e8f1fb", PRINCIPAL: "#fff4dc", NETWORK: "#fde8e8", ESSENTIAL: "#eeeeee"}
HIGHLIGHT = "#d33"  # edges to look at twice: admitted at L3 by namespace only, egress with no caller rule
ESSENTIAL_EDGE = "#c8c8c8"


@dataclass(frozen=True)
class Box:
    x: int
    y: int

    @property
    def left(self) -> tuple[int, int]:
        return self.x, self.y + BOX_HEIGHT // 2

    @property
    def right(self) -> tuple[int, int]:
        return self.x + BOX_WIDTH, self.y + BOX_HEIGHT // 2


def placed(graph: CallGraph) -> tuple[dict[str, Box], int, int]:
    columns = layered(graph)
    boxes = {
        key: Box(MARGIN + col * (BOX_WIDTH + GAP_X), MARGIN + row * (BOX_HEIGHT + GAP_Y))
        for col, column in enumerate(columns)
        for row, key in enumerate(column)
    }
    width = MARGIN * 2 + len(columns) * BOX_WIDTH + (len(columns) - 1) * GAP_X
    height = MARGIN * 2 + max((len(c) for c in columns), default=1) * (BOX_HEIGHT + GAP_Y)
    return boxes, width, height


def to_svg(graph: CallGraph) -> str:
    boxes, width, height = placed(graph)
    svg = ET.Element(
        "svg",
        xmlns="http://www.w3.org/2000/svg",
        width=str(width),
        height=str(height),
        viewBox=f"0 0 {width} {height}",
    )
    ET.SubElement(svg, "rect", width=str(width), height=str(height), fill="white")
    for edge in graph.edges:
        (x1, y1), (x2, y2) = boxes[edge.source].right, boxes[edge.target].left
        color = HIGHLIGHT if edge.highlight else "#555"
        line = ET.SubElement(svg, "line", x1=str(x1), y1=str(y1), x2=str(x2), y2=str(y2), stroke=color)
        if edge.highlight:
            line.set("stroke-dasharray", "6 4")
            ET.SubElement(line, "title").text = edge.highlight
        ET.SubElement(svg, "circle", cx=str(x2), cy=str(y2), r="3", fill=color)
        if graph.nodes[edge.target].kind == ESSENTIAL:
            line.set("stroke", ESSENTIAL_EDGE)
            continue  # every workload reaches them; their labels would hide the rest
        label = ET.SubElement(svg, "text", x=str((x1 + x2) // 2), y=str((y1 + y2) // 2 - 4), fill=color)
        label.set("font-size", "10")
        label.set("text-anchor", "middle")
        label.set("font-family", "Helvetica, Arial, sans-serif")
        label.text = edge.label
    for key, box in boxes.items():
        node = graph.nodes[key]
        rect = ET.SubElement(
            svg,
            "rect",
            x=str(box.x),
            y=str(box.y),
            width=str(BOX_WIDTH),
            height=str(BOX_HEIGHT),
            rx="8",
            fill=FILL[node.kind],
            stroke="#333",
        )
        if node.audit:
            rect.set("stroke-dasharray", "4 3")
        for index, text_line in enumerate(node.label.split("\n")):
            text = ET.SubElement(svg, "text", x=str(box.x + 10), y=str(box.y + 20 + index * 15))
            text.set("font-family", "Helvetica, Arial, sans-serif")
            text.set("font-size", str(FONT_SIZE + (1 if index == 0 else -1)))
            text.text = text_line
    return ET.tostring(svg, encoding="unicode") + "\n"


def to_png(graph: CallGraph) -> bytes:
    from io import BytesIO  # noqa: PLC0415

    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415 - only the PNG output needs Pillow

    boxes, width, height = placed(graph)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=FONT_SIZE)
    small = ImageFont.load_default(size=FONT_SIZE - 2)
    for edge in graph.edges:
        start, end = boxes[edge.source].right, boxes[edge.target].left
        color = HIGHLIGHT if edge.highlight else "#555555"
        if graph.nodes[edge.target].kind == ESSENTIAL:
            draw.line([start, end], fill=ESSENTIAL_EDGE, width=1)
            continue
        draw.line([start, end], fill=color, width=1)
        draw.ellipse([end[0] - 3, end[1] - 3, end[0] + 3, end[1] + 3], fill=color)
        middle = ((start[0] + end[0]) // 2, (start[1] + end[1]) // 2 - 4)
        draw.text(middle, edge.label, fill=color, font=small, anchor="ms")
    for key, box in boxes.items():
        node = graph.nodes[key]
        draw.rounded_rectangle(
            [box.x, box.y, box.x + BOX_WIDTH, box.y + BOX_HEIGHT],
            radius=8,
            fill=FILL[node.kind],
            outline="#333333",
        )
        draw.multiline_text((box.x + 10, box.y + 8), node.label, fill="black", font=font, spacing=3)
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


FORMATS = {".dot": to_dot, ".gv": to_dot, ".mmd": to_mermaid, ".svg": to_svg}


SUMMARY = "draw the allowed call graph: workloads, callers, external networks, platform essentials"
EXAMPLES = """the output format follows the file name: .svg, .png, .dot, .mmd (Mermaid); - prints Mermaid

examples:
  payguard graph -f examples/checkout.yaml -o checkout.svg
  payguard graph -f examples/ -o payments.png
  payguard graph --live -n payments -o payments.mmd
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser, required=False)
    parser.add_argument("--live", action="store_true", help="graph the PaymentServices in the cluster")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (with --live)")
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE.svg|.png|.dot|.mmd|-", help="where to write"
    )


def main(args: argparse.Namespace) -> int:
    suffix = Path(args.output).suffix.lower()
    if args.output != "-" and suffix not in (*FORMATS, ".png"):
        print(f"payguard graph: -o wants .svg, .png, .dot or .mmd, got {args.output!r}", file=sys.stderr)
        return 2
    try:
        services = _live(args) if args.live else _offline(args)
    except (SourceError, ApiError, ValueError) as error:
        print(f"payguard graph: {error}", file=sys.stderr)
        return 2
    graph = call_graph(services, platform=args.platform)
    if args.output == "-":
        sys.stdout.write(to_mermaid(graph))
    elif suffix == ".png":
        Path(args.output).write_bytes(to_png(graph))
    else:
        Path(args.output).write_text(FORMATS[suffix](graph))
    return 0


def _offline(args: argparse.Namespace) -> list[PaymentService]:
    if not args.filename:
        raise ValueError("give -f FILE (offline) or --live")
    networks = args.platform.cluster_networks()
    services, refused = parse_services(
        read_documents(args.filename), namespace=args.namespace, networks=networks
    )
    if refused:
        raise ValueError(f"{refused[0]} (run payguard check)")
    return services


def _live(args: argparse.Namespace) -> list[PaymentService]:
    from payguard.cluster import connect  # noqa: PLC0415 - offline use needs no client

    items, _ = connect(args.kubeconfig).list_with_version(PAYMENT_SERVICES, namespace=args.namespace)
    services = []
    for item in items:
        try:
            services.append(parse_payment_service(item))
        except InvalidSpec:
            continue  # the operator reports it as InvalidSpec; the graph shows the valid ones
    return services
