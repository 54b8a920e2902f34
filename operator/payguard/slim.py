"""Owns what the cache keeps of each object (pure): only what a pass reads, so memory stays small with
thousands of pods.

Pods keep their labels, Istio's few annotations, ServiceAccount, container names and ports, native
sidecar init containers, phase and deletion; Services their selector and ports; ServiceAccounts and
Namespaces their names, labels and deletion; issuers their status conditions; CertificateRequests their
metadata and status without the CA (not their CSR). ConfigMaps (only the mesh config is watched) keep
their data. Every other kind is kept whole except what no pass reads: metadata.managedFields (often half
an object's size), the status Istio writes on its policies, and the value of kubectl's last-applied
annotation (a second copy of the object; its key stays, so a JSON patch of annotations sees what the API
server holds). Keys and short strings are interned: thousands of objects repeat the same few hundred.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from payguard.kinds import (
    AMBIENT_REDIRECTION_ANNOTATION,
    AUTHORIZATION_POLICIES,
    CERTIFICATE_REQUESTS,
    CLUSTER_ISSUERS,
    ISSUERS,
    NAMESPACES,
    NETWORK_POLICIES,
    PEER_AUTHENTICATIONS,
    PODS,
    SERVICE_ACCOUNTS,
    SERVICES,
    SIDECAR_INJECT,
    SIDECAR_STATUS_ANNOTATION,
)

Body = Mapping[str, Any]
_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "deletionTimestamp", "labels")
_POD_ANNOTATIONS = (SIDECAR_STATUS_ANNOTATION, SIDECAR_INJECT, AMBIENT_REDIRECTION_ANNOTATION)
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
# Kinds whose status no pass reads (Istio writes validation messages there).
_STATUS_UNREAD = frozenset({PEER_AUTHENTICATIONS.kind, AUTHORIZATION_POLICIES.kind, NETWORK_POLICIES.kind})
INTERNED_LENGTH = 64  # longer strings (certificates, messages) are rarely repeated


def slim(kind: str, body: Body) -> dict[str, Any]:
    """What the cache keeps of `body`."""
    kept: dict[str, Any] = compact(_kept(kind, body))
    return kept


def _kept(kind: str, body: Body) -> dict[str, Any]:
    if kind == PODS.kind:
        return _pod(body)
    if kind == SERVICES.kind:
        spec = body.get("spec") or {}
        ports = [
            _pick(p, ("name", "port", "targetPort", "protocol", "appProtocol"))
            for p in spec.get("ports") or []
        ]
        return {**_envelope(body), "spec": {"selector": spec.get("selector") or {}, "ports": ports}}
    if kind in (SERVICE_ACCOUNTS.kind, NAMESPACES.kind):
        return _envelope(body)
    if kind in (ISSUERS.kind, CLUSTER_ISSUERS.kind):
        conditions = (body.get("status") or {}).get("conditions") or []
        return {**_envelope(body), "status": {"conditions": conditions}}
    metadata = {key: value for key, value in body["metadata"].items() if key != "managedFields"}
    annotations = metadata.get("annotations") or {}
    if LAST_APPLIED_ANNOTATION in annotations:
        metadata["annotations"] = {**annotations, LAST_APPLIED_ANNOTATION: ""}
    kept = {**body, "metadata": metadata}
    if kind in _STATUS_UNREAD:
        kept.pop("status", None)
    if kind == CERTIFICATE_REQUESTS.kind:
        kept.pop("spec", None)  # the CSR: posture reads the signed certificate, never the request
        if "status" in body:
            kept["status"] = {k: v for k, v in (body.get("status") or {}).items() if k != "ca"}
    return kept


def compact(value: Any) -> Any:
    """A copy with every key, and every short string, interned."""
    if isinstance(value, Mapping):
        return {sys.intern(str(key)): compact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [compact(item) for item in value]
    if isinstance(value, str) and len(value) <= INTERNED_LENGTH:
        return sys.intern(value)
    return value


def _pod(body: Body) -> dict[str, Any]:
    spec = body.get("spec") or {}
    annotations = body["metadata"].get("annotations") or {}
    kept = {key: annotations[key] for key in _POD_ANNOTATIONS if key in annotations}
    envelope = _envelope(body)
    if kept:
        envelope["metadata"]["annotations"] = kept
    return {
        **envelope,
        "spec": {
            "serviceAccountName": spec.get("serviceAccountName") or "",
            "containers": [_container(c) for c in spec.get("containers") or []],
            "initContainers": [_pick(c, ("name", "restartPolicy")) for c in spec.get("initContainers") or []],
        },
        "status": {"phase": (body.get("status") or {}).get("phase", "")},
    }


def _container(container: Body) -> dict[str, Any]:
    ports = [_pick(p, ("name", "containerPort")) for p in container.get("ports") or []]
    return {"name": container.get("name", ""), "ports": ports}


def _envelope(body: Body) -> dict[str, Any]:
    return {
        "apiVersion": body.get("apiVersion", ""),
        "kind": body.get("kind", ""),
        "metadata": _pick(body["metadata"], _METADATA),
    }


def _pick(mapping: Body, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: mapping[key] for key in keys if key in mapping}
