"""Owns `payguard render`: the children the operator would apply for each PaymentService of the input,
from the operator's own parser and renderer, in apply order, as YAML or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from payguard.dataplane import Dataplanes, dataplanes
from payguard.model import InvalidSpec, PaymentService
from payguard.platform import Network, Platform
from payguard.render import Manifest, render_children
from payguard.spec import parse_payment_service
from payguard.spec.networks import check_cluster_networks
from payguard.tools.sources import Document, SourceError, path_keys, read_documents


@dataclass(frozen=True)
class Unreadable:
    """A PaymentService document the parser refuses; `payguard check` says more."""

    document: Document
    error: InvalidSpec

    def __str__(self) -> str:
        line = self.document.line_of(path_keys(self.error.path))
        return f"{self.document.source}:{line}: {self.error}"


def parse_services(
    documents: Sequence[Document],
    *,
    namespace: str | None,
    networks: Sequence[tuple[str, Network]] = (),
) -> tuple[list[PaymentService], list[Unreadable]]:
    """Each PaymentService document as the operator reads it; `namespace` fills in a missing namespace,
    and egress CIDRs overlapping the cluster `networks` (--pod-cidr, --service-cidr) are refused."""
    services, refused = [], []
    for document in documents:
        if not document.is_payment_service:
            continue
        body = with_default_namespace(document.body, namespace)
        try:
            service = parse_payment_service(body)
            check_cluster_networks(service, networks)
            services.append(service)
        except InvalidSpec as error:
            refused.append(Unreadable(document, error))
    return services, refused


def with_default_namespace(body: dict[str, object], namespace: str | None) -> dict[str, object]:
    metadata = body.get("metadata")
    if namespace is None or not isinstance(metadata, dict) or metadata.get("namespace"):
        return body
    return {**body, "metadata": {**metadata, "namespace": namespace}}


def render_services(
    services: Sequence[PaymentService], *, platform: Platform, documents: Sequence[Document] = ()
) -> list[Manifest]:
    """Each service's children; Namespaces, Services and Pods among `documents` decide ambient mode the way
    the operator reads them on a cluster (Istio's labels), so without them every workload is sidecar."""
    return [
        child
        for service in services
        for child in render_children(service, platform=platform, dataplanes=_dataplanes(service, documents))
    ]


def _dataplanes(service: PaymentService, documents: Sequence[Document]) -> Dataplanes:
    def of_kind(kind: str) -> list[dict[str, Any]]:
        return [
            d.body
            for d in documents
            if isinstance(d.body, dict)
            and d.body.get("kind") == kind
            and d.body.get("apiVersion") == "v1"
            and (d.body.get("metadata") or {}).get("namespace", service.namespace) == service.namespace
        ]

    namespaces = [
        n for n in of_kind("Namespace") if (n.get("metadata") or {}).get("name") == service.namespace
    ]
    return dataplanes(
        service,
        namespace=namespaces[0] if namespaces else None,
        pods=of_kind("Pod"),
        services=of_kind("Service"),
    )


def format_manifests(manifests: Sequence[Manifest], *, output: str) -> str:
    """YAML documents with sorted keys, or one JSON `List`: the same input always gives the same bytes."""
    if output == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifests)}, indent=2) + "\n"
    return yaml.safe_dump_all(list(manifests), sort_keys=True)


SUMMARY = "print the children the operator would apply for each PaymentService (offline)"
EXAMPLES = """examples:
  payguard render -f examples/checkout.yaml
  payguard render -f manifests/ --namespace payments -o json
  payguard render -f examples/ambient.yaml -f examples/ambient/   # with its Namespace: ambient mode
  kustomize build overlays/prod | payguard render -f -
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml", help="output format")


def add_input_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        required=required,
        metavar="FILE|DIR|-",
        help="manifests to read (repeatable); a directory means its *.yaml, *.yml, *.json; - is stdin",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        default=None,
        help="namespace of PaymentServices that name none (default: default)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        documents = read_documents(args.filename)
    except SourceError as error:
        print(f"payguard render: {error}", file=sys.stderr)
        return 2
    networks = args.platform.cluster_networks()
    services, refused = parse_services(documents, namespace=args.namespace, networks=networks)
    for failure in refused:
        print(f"payguard render: {failure} (run payguard check for every error)", file=sys.stderr)
    if refused:
        return 1
    sys.stdout.write(
        format_manifests(
            render_services(services, platform=args.platform, documents=documents), output=args.output
        )
    )
    return 0
