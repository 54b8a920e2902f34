"""Owns `payguard diff`: what applying the manifests would change in the children, kubectl-diff style.

The merged side comes from a server-side dry-run of the operator's own apply bodies (admission and the
API server's defaulting included, nothing stored); children the operator would prune are shown removed.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from payguard.api import ApiError
from payguard.cluster import Cluster, connect
from payguard.dataplane import SIDECAR_ONLY, Dataplanes, dataplanes
from payguard.kinds import CHILD_TYPES, NAMESPACES, PAYMENT_SERVICES, PODS, SERVICE_LABEL, SERVICES
from payguard.model import PaymentService
from payguard.platform import Platform
from payguard.posture.objects import is_owned_by
from payguard.render import render_children
from payguard.render.metadata import child_key
from payguard.tools.render import add_input_arguments, parse_services
from payguard.tools.sources import SourceError, read_documents

# Fields the server sets on every write: they say nothing about what applying would change.
VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid")
# Placeholder owner of a PaymentService not yet created: the dry-run needs a syntactically valid uid.
UNCREATED_UID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Change:
    """One child whose live and merged forms differ (either may be None: created or pruned)."""

    kind: str
    namespace: str
    name: str
    live: Mapping[str, Any] | None
    merged: Mapping[str, Any] | None

    def unified(self) -> str:
        label = f"{self.kind}/{self.namespace}/{self.name}"
        lines = difflib.unified_diff(
            _text(self.live).splitlines(keepends=True),
            _text(self.merged).splitlines(keepends=True),
            fromfile=f"live/{label}",
            tofile=f"merged/{label}",
        )
        return "".join(lines)


def comparable(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The object without the fields every write moves, and without status (apply never changes it)."""
    if obj is None:
        return None
    metadata = {k: v for k, v in obj.get("metadata", {}).items() if k not in VOLATILE_METADATA}
    return {**{k: v for k, v in obj.items() if k not in ("metadata", "status")}, "metadata": metadata}


def changes_of(
    desired: Sequence[tuple[Mapping[str, Any] | None, Mapping[str, Any]]],
    pruned: Sequence[Mapping[str, Any]],
) -> list[Change]:
    """Pure: (live, merged) pairs and objects to be pruned -> the children that would change."""
    found = []
    for live, merged in desired:
        before, after = comparable(live), comparable(merged)
        if before != after:
            kind, namespace, name = child_key(dict(merged))
            found.append(Change(kind, namespace, name, before, after))
    for live in pruned:
        kind, namespace, name = child_key(dict(live))
        found.append(Change(kind, namespace, name, comparable(live), None))
    return found


def preview(cluster: Cluster, service: PaymentService, *, platform: Platform) -> list[Change]:
    """Dry-runs the service's children against the cluster and compares them with the live ones."""
    live_service = cluster.read(PAYMENT_SERVICES, namespace=service.namespace, name=service.name)
    uid = str(live_service["metadata"]["uid"]) if live_service else UNCREATED_UID
    owned = _owned_children(cluster, service, uid=uid)
    pairs = []
    planes = live_dataplanes(cluster, service)
    for child in render_children(_with_uid(service, uid), platform=platform, dataplanes=planes):
        live = owned.pop(child_key(child), None) or cluster.read(
            CHILD_TYPES[child["kind"]], namespace=service.namespace, name=child["metadata"]["name"]
        )
        pairs.append((live, cluster.preview_apply(child)))
    return changes_of(pairs, list(owned.values()))


def live_dataplanes(cluster: Cluster, service: PaymentService) -> Dataplanes:
    """Ambient mode as the operator reads it, from the live namespace, its pods and its Services; when
    they cannot be read, sidecar mode (as the operator does), said on stderr."""
    try:
        namespaces, _ = cluster.list_with_version(NAMESPACES, namespace=None, name=service.namespace)
        pods, _ = cluster.list_with_version(PODS, namespace=service.namespace)
        services, _ = cluster.list_with_version(SERVICES, namespace=service.namespace)
    except ApiError as error:
        print(f"payguard diff: rendering for sidecar mode: {error}", file=sys.stderr)
        return SIDECAR_ONLY
    return dataplanes(service, namespace=namespaces[0] if namespaces else None, pods=pods, services=services)


def _with_uid(service: PaymentService, uid: str) -> PaymentService:
    return replace(service, uid=uid)


def _owned_children(
    cluster: Cluster, service: PaymentService, *, uid: str
) -> dict[tuple[str, str, str], Any]:
    """Live children payguard manages for this PaymentService (the ones a pass would prune if unwanted)."""
    owned = {}
    for resource in CHILD_TYPES.values():
        items, _version = cluster.list_with_version(resource, namespace=service.namespace)
        for item in items:
            labels = item.get("metadata", {}).get("labels") or {}
            if labels.get(SERVICE_LABEL) == service.name and is_owned_by(item, service_uid=uid):
                owned[child_key(item)] = item
    return owned


def _text(obj: Mapping[str, Any] | None) -> str:
    return yaml.safe_dump(dict(obj), sort_keys=True) if obj is not None else ""


SUMMARY = "show what applying PaymentServices would change in their children (server-side dry-run)"
EXAMPLES = """exit status, as kubectl diff: 0 no change, 1 changes, 2 error

examples:
  payguard diff -f examples/checkout.yaml
  payguard diff -f manifests/ --kubeconfig ~/.kube/staging
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file; default: $KUBECONFIG")


def main(args: argparse.Namespace) -> int:
    try:
        documents = read_documents(args.filename)
    except SourceError as error:
        print(f"payguard diff: {error}", file=sys.stderr)
        return 2
    networks = args.platform.cluster_networks()
    services, refused = parse_services(documents, namespace=args.namespace, networks=networks)
    for failure in refused:
        print(f"payguard diff: {failure} (run payguard check for every error)", file=sys.stderr)
    if refused:
        return 2
    try:
        cluster = connect(args.kubeconfig)
        changes = [change for s in services for change in preview(cluster, s, platform=args.platform)]
    except ApiError as error:
        print(f"payguard diff: {error}", file=sys.stderr)
        return 2
    sys.stdout.write("".join(change.unified() for change in changes))
    return 1 if changes else 0
