"""Owns the operator's runtime settings: where it watches and the names it writes under payguard.dev."""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "payguard.dev"
VERSION = "v1alpha1"
PLURAL = "paymentservices"
FIELD_MANAGER = "payguard"
# kopf's own bookkeeping lives under our domain, not kopf.zalando.org, so cluster admins see one owner.
FINALIZER = f"{GROUP}/finalizer"
ANNOTATION_PREFIX = GROUP


@dataclass(frozen=True)
class RunSettings:
    """How `payguard run` was asked to run."""

    namespaces: tuple[str, ...] = ()  # empty: every namespace
    liveness_endpoint: str | None = None

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces
