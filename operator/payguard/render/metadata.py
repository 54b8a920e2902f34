"""Owns what every generated object carries: its name, payguard's labels and the controller ownerReference."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from payguard.kinds import (
    CHILD_TYPES,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PAYMENT_SERVICES,
    PCI_REQUIREMENTS_ANNOTATION,
    PCI_SCOPE_LABEL,
    RENDERED_HASH_ANNOTATION,
    SERVICE_LABEL,
    WORKLOAD_LABEL,
)
from payguard.model import PaymentService, Workload

Manifest = dict[str, Any]


class ChildKind(StrEnum):
    """The kinds payguard generates, with the apiVersion it writes them at."""

    PEER_AUTHENTICATION = "PeerAuthentication"
    AUTHORIZATION_POLICY = "AuthorizationPolicy"
    NETWORK_POLICY = "NetworkPolicy"
    CERTIFICATE = "Certificate"

    @property
    def api_version(self) -> str:
        return CHILD_TYPES[self.value].api_version

    @property
    def pci_requirements(self) -> tuple[str, ...]:
        """The PCI-DSS v4.0 requirements objects of this kind support, for auditors."""
        return _PCI_REQUIREMENTS[self]


def child_key(manifest: Manifest) -> tuple[str, str, str]:
    """(kind, namespace, name): how desired and live objects are matched up."""
    metadata = manifest["metadata"]
    return (manifest["kind"], metadata["namespace"], metadata["name"])


def managed_labels(service: PaymentService, workload: Workload) -> dict[str, str]:
    return {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        SERVICE_LABEL: service.name,
        WORKLOAD_LABEL: workload.name,
        PCI_SCOPE_LABEL: service.pci_scope.value,
    }


def owner_reference(service: PaymentService) -> dict[str, Any]:
    return {
        "apiVersion": PAYMENT_SERVICES.api_version,
        "kind": PAYMENT_SERVICES.kind,
        "name": service.name,
        "uid": service.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


_PCI_REQUIREMENTS = {
    ChildKind.PEER_AUTHENTICATION: ("4.2.1", "8.3.2"),  # strong cryptography in transit; authentication
    ChildKind.AUTHORIZATION_POLICY: ("7.2.1", "7.2.2"),  # access by need to know, least privilege
    ChildKind.NETWORK_POLICY: ("1.2.1", "1.3.1", "1.3.2"),  # network security controls, CDE in/out
    ChildKind.CERTIFICATE: ("3.6.1", "4.2.1", "8.3.2"),  # key management; transit; authentication
}


def child_manifest(
    kind: ChildKind,
    service: PaymentService,
    workload: Workload,
    *,
    spec: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> Manifest:
    return {
        "apiVersion": kind.api_version,
        "kind": kind.value,
        "metadata": {
            "name": service.child_name(workload),
            "namespace": service.namespace,
            "labels": managed_labels(service, workload),
            "annotations": {
                PCI_REQUIREMENTS_ANNOTATION: ",".join(kind.pci_requirements),
                **(annotations or {}),
            },
            "ownerReferences": [owner_reference(service)],
        },
        "spec": spec,
    }


def with_rendered_hash(manifest: Manifest) -> Manifest:
    """The manifest carrying a digest of itself, so a later pass can tell its own older rendering (to
    update) from someone else's edit (drift). The owner is left out of the digest: a PaymentService created
    again under the same name (new uid) adopting retained controls is not a change of what they enforce."""
    metadata = manifest["metadata"]
    annotations = {k: v for k, v in metadata.get("annotations", {}).items() if k != RENDERED_HASH_ANNOTATION}
    digested = {k: v for k, v in metadata.items() if k != "ownerReferences"}
    rendered = {**manifest, "metadata": {**digested, "annotations": annotations}}
    digest = hashlib.sha256(json.dumps(rendered, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    annotations = {**metadata.get("annotations", {}), RENDERED_HASH_ANNOTATION: digest[:16]}
    return {**manifest, "metadata": {**metadata, "annotations": annotations}}


def rendered_hash(obj: Manifest | Any) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(RENDERED_HASH_ANNOTATION)
