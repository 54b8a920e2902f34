"""Owns `payguard evidence`: a PCI-DSS evidence bundle per PaymentService, read from the live cluster.

It reads PaymentServices, their children, CertificateRequests and Events; never a Secret, so a bundle can
hold no key or token (bundle.py refuses one that looks like it does).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from payguard import __version__
from payguard.api import ApiError
from payguard.cluster import Cluster, connect
from payguard.kinds import CERTIFICATE_REQUESTS, CHILD_TYPES, EVENTS, PAYMENT_SERVICES, SERVICE_LABEL
from payguard.model import InvalidSpec
from payguard.posture.objects import is_owned_by
from payguard.spec import parse_payment_service
from payguard.tools.bundle import UnsafeBundleError, bundle_files
from payguard.tools.pci import evidence_of


def gather(cluster: Cluster, *, namespace: str | None, collected_at: str) -> list[dict[str, Any]]:
    """The evidence document of every PaymentService in the namespace (all namespaces: None)."""
    services, _ = cluster.list_with_version(PAYMENT_SERVICES, namespace=namespace)
    documents = []
    per_namespace: dict[str, dict[str, Any]] = {}
    for body in sorted(services, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
        try:
            service = parse_payment_service(body)
        except InvalidSpec as error:
            print(f"payguard evidence: skipping {_name(body)}: invalid spec: {error}", file=sys.stderr)
            continue
        listed = per_namespace.get(service.namespace)
        if listed is None:
            listed = per_namespace[service.namespace] = _namespace_objects(cluster, service.namespace)
        children = [
            child
            for child in listed["children"]
            if (child["metadata"].get("labels") or {}).get(SERVICE_LABEL) == service.name
            and is_owned_by(child, service_uid=service.uid)
        ]
        documents.append(
            evidence_of(
                body,
                service,
                children=children,
                requests=listed["requests"],
                events=listed["events"],
                unobserved=listed["unobserved"],
                collected_at=collected_at,
                tool_version=__version__,
            )
        )
    return documents


def _namespace_objects(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """Everything the namespace's bundles draw on; a kind not served or not readable is noted, not fatal."""
    found: dict[str, Any] = {"children": [], "requests": [], "events": [], "unobserved": {}}
    sources = [*((r, "children") for r in CHILD_TYPES.values()), (CERTIFICATE_REQUESTS, "requests")]
    for resource, key in [*sources, (EVENTS, "events")]:
        try:
            found[key] += cluster.list_with_version(resource, namespace=namespace)[0]
        except ApiError as error:
            if error.status not in (403, 404):
                raise
            found["unobserved"][resource.kind] = str(error)
    return found


def write_bundle(directory: Path, evidence: Mapping[str, Any]) -> Path:
    """DIR/<namespace>/<name>/{evidence.json,report.html,SHA256SUMS}; returns the bundle's directory."""
    service = evidence["paymentService"]
    files = bundle_files(evidence)  # refuses before anything is written
    target = directory / str(service["namespace"]) / str(service["name"])
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (target / name).write_bytes(content)
    return target


def _name(body: Mapping[str, Any]) -> str:
    return f"{body['metadata'].get('namespace')}/{body['metadata'].get('name')}"


SUMMARY = "write a PCI-DSS evidence bundle per PaymentService from the live cluster"
EXAMPLES = """each bundle is DIR/<namespace>/<name>/ with report.html, evidence.json and SHA256SUMS
(verify with: cd DIR/<namespace>/<name> && sha256sum -c SHA256SUMS); no Secret is ever read

examples:
  payguard evidence --live -n payments -o evidence/
  payguard evidence --live -o /tmp/audit-2026-q4 --kubeconfig ~/.kube/prod
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--live", action="store_true", required=True, help="read the cluster (evidence is never offline)"
    )
    parser.add_argument("-n", "--namespace", default=None, help="only this namespace (default: all)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the bundles")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file; default: $KUBECONFIG")


def main(args: argparse.Namespace) -> int:
    collected_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        cluster = connect(args.kubeconfig)
        documents = gather(cluster, namespace=args.namespace, collected_at=collected_at)
    except ApiError as error:
        print(f"payguard evidence: {error}", file=sys.stderr)
        return 2
    if not documents:
        where = f"namespace {args.namespace}" if args.namespace else "any namespace"
        print(f"payguard evidence: no valid PaymentService in {where}", file=sys.stderr)
        return 1
    try:
        for evidence in documents:
            print(write_bundle(Path(args.output), evidence))
    except (UnsafeBundleError, OSError) as error:
        print(f"payguard evidence: {error}", file=sys.stderr)
        return 2
    return 0
