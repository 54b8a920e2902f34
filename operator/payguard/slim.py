"""Owns what the cache keeps of each object (pure): only what a pass reads, so memory stays small with
thousands of pods.

Pods keep their labels, Istio's few annotations, ServiceAccount, container names and ports, native
sidecar init containers, phase and deletion; Services their selector and ports; ConfigMaps (only the
mesh config is watched) their data. Every other kind is kept whole except metadata.managedFields, often
half an object's size, which no pass reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payguard.kinds import (
    AMBIENT_REDIRECTION_ANNOTATION,
    PODS,
    SERVICE_ACCOUNTS,
    SERVICES,
    SIDECAR_INJECT,
    SIDECAR_STATUS_ANNOTATION,
)

Body = Mapping[str, Any]
_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "deletionTimestamp", "labels")
_POD_ANNOTATIONS = (SIDECAR_STATUS_ANNOTATION, SIDECAR_INJECT, AMBIENT_REDIRECTION_ANNOTATION)


def slim(kind: str, body: Body) -> dict[str, Any]:
    """What the cache keeps of `body`."""
    if kind == PODS.kind:
        return _pod(body)
    if kind == SERVICES.kind:
        spec = body.get("spec") or {}
        ports = [
            _pick(p, ("name", "port", "targetPort", "protocol", "appProtocol"))
            for p in spec.get("ports") or []
        ]
        return {**_envelope(body), "spec": {"selector": spec.get("selector") or {}, "ports": ports}}
    if kind == SERVICE_ACCOUNTS.kind:
        return _envelope(body)
    metadata = {key: value for key, value in body["metadata"].items() if key != "managedFields"}
    return {**body, "metadata": metadata}


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
