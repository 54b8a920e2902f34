"""Owns the words for an Istio policy's scope, and the root namespace that makes a policy mesh-wide."""

from __future__ import annotations

DEFAULT_MESH_ROOT_NAMESPACE = "istio-system"

# Scopes of an Istio policy, in the words the findings use.
WORKLOAD_SPECIFIC = "workload-specific"
NAMESPACE_WIDE = "namespace-wide"
MESH_WIDE = "mesh-wide"
