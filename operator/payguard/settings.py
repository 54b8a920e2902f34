"""Owns the operator's settings: how `payguard run` was asked to run, typed, built once from the flags."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from payguard.platform import Labels, Platform

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

# Labels and Platform moved to payguard.platform; still importable from here.
__all__ = ["Election", "LabelRequirement", "Labels", "Platform", "RunSettings"]


@dataclass(frozen=True)
class LabelRequirement:
    """One term of a label selector: `key=value` (equals) or `key!=value` (a missing key also matches)."""

    key: str
    value: str
    equals: bool = True

    def matches(self, labels: Mapping[str, str]) -> bool:
        return (labels.get(self.key) == self.value) == self.equals

    def __str__(self) -> str:
        return f"{self.key}{'=' if self.equals else '!='}{self.value}"


@dataclass(frozen=True)
class Election:
    """Leader election and sharding over Leases (client-go's semantics), in seconds."""

    identity: str  # the holder identity: the pod's name
    namespace: str  # where the Leases live: the operator's own namespace
    shards: int = 1
    lease_duration: float = 15.0  # candidates wait this long without seeing a renewal before taking over
    renew_deadline: float = 10.0  # a holder that has not renewed for this long stops writing at once
    retry_period: float = 2.0  # how often holders renew and candidates try
    group: str = "payguard"  # Lease names start with this (and their group label says it)

    def problems(self) -> list[str]:
        """What is wrong, naming the flag (empty when valid)."""
        found = []
        if not self.identity:
            found.append("--identity is empty (the chart sets it to the pod's name)")
        if not self.namespace:
            found.append("--lease-namespace is empty (the chart sets it to the operator's namespace)")
        if not _DNS_LABEL.fullmatch(self.group) or len(self.group) > 40:
            found.append(f"--lease-prefix must be a DNS label of at most 40 characters, got {self.group!r}")
        if not 1 <= self.shards <= 1024:
            found.append(f"--shards must be between 1 and 1024, got {self.shards}")
        if self.retry_period <= 0:
            found.append("--retry-period must be above 0")
        if self.renew_deadline <= self.retry_period:
            found.append("--renew-deadline must be longer than --retry-period")
        if self.lease_duration <= self.renew_deadline:
            found.append("--lease-duration must be longer than --renew-deadline")
        if self.lease_duration != int(self.lease_duration):
            found.append("--lease-duration must be whole seconds (the Lease's leaseDurationSeconds)")
        return found


@dataclass(frozen=True)
class RunSettings:
    """How `payguard run` was asked to run; the defaults are the flags' defaults."""

    namespaces: tuple[str, ...] = ()  # empty: every namespace
    kubeconfig: str | None = None  # None: in-cluster, else $KUBECONFIG
    workers: int = 4  # passes running at once
    qps: float = 0.0  # client-side limit, API requests per second on average; 0: none (the API server's APF)
    burst: int = 0  # requests allowed at once above that average; 0: twice qps
    audit_only: bool = False  # treat every PaymentService as enforcement: Audit (a rollout safety switch)
    selector: tuple[LabelRequirement, ...] = ()  # only PaymentServices whose labels match all of these
    resync_seconds: float = 300.0  # every PaymentService gets a pass at least this often
    fight_window_seconds: float = 300.0  # 3 drifts of one object within this are a fight (DriftRepeated)
    mesh_root_namespace: str = "istio-system"
    mesh_config_name: str = "istio"  # the ConfigMap holding Istio's mesh config (`istio-<revision>`)
    platform: Platform = field(default_factory=Platform)
    metrics_port: int = 0  # 0: no metrics endpoint
    metrics_address: str = "0.0.0.0"  # the chart's NetworkPolicy limits who reaches it
    liveness_endpoint: str | None = None
    election: Election | None = None  # None: no Leases, this process owns every PaymentService

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def watched_namespaces(self) -> tuple[str, ...]:
        """Namespaces to watch when not cluster-wide: the chosen ones, plus the mesh root (read only),
        whose mesh-wide Istio policies weaken or widen every workload's controls."""
        if self.clusterwide:
            return ()
        return tuple(dict.fromkeys((*self.namespaces, self.mesh_root_namespace)))

    def selects(self, *, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether a PaymentService is this operator's to reconcile."""
        in_scope = self.clusterwide or namespace in self.namespaces
        return in_scope and all(requirement.matches(labels) for requirement in self.selector)
