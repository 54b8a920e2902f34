"""Owns the operator's runtime settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunSettings:
    """How `payguard run` was asked to run."""

    namespaces: tuple[str, ...] = ()  # empty: every namespace
    kubeconfig: str | None = None  # None: in-cluster, else $KUBECONFIG
    workers: int = 4  # passes running at once
    qps: float = 50.0  # API requests per second, on average (client-side limit)
    burst: int = 100  # requests allowed at once above that average
    audit_only: bool = False  # treat every PaymentService as enforcement: Audit (a rollout safety switch)
    selector: tuple[tuple[str, str], ...] = ()  # only PaymentServices with these labels
    resync_seconds: float = 300.0  # every PaymentService gets a pass at least this often
    mesh_root_namespace: str = "istio-system"
    metrics_port: int = 0  # 0: no metrics endpoint
    metrics_address: str = "0.0.0.0"  # the chart's NetworkPolicy limits who reaches it
    liveness_endpoint: str | None = None

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces
