"""Owns whether the controls reach real pods (pure): per workload, the pods its selector matches, which of
them run in the mesh (a sidecar, or ambient mode) under the declared ServiceAccount, and caller rules
Istio cannot enforce on the port they name.

Istio enforces STRICT mTLS and ALLOW rules in the proxy: a pod without one is reached in plaintext by
anyone the NetworkPolicy admits, whatever the policies say. So a policy object alone proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from payguard.kinds import (
    AMBIENT_REDIRECTION_ANNOTATION,
    DATAPLANE_MODE_LABEL,
    INJECTION_LABEL,
    PROXY_CONTAINER,
    REVISION_LABEL,
    SIDECAR_INJECT,
)
from payguard.model import PaymentService, Workload

Body = Mapping[str, Any]
MAX_NAMED = 5  # pods named in a message or summary; the rest are counted
SIDECAR = "Sidecar"
AMBIENT = "Ambient"
# Istio's protocols for which it cannot read HTTP: a methods/paths rule on such a port never matches.
OPAQUE_PROTOCOLS = frozenset({"tcp", "tls", "https", "mongo", "mysql", "redis"})


@dataclass(frozen=True)
class PodFinding:
    pod: str
    why: str

    def __str__(self) -> str:
        return f"{self.pod} ({self.why})"


@dataclass(frozen=True)
class WorkloadMesh:
    """What the pods of one workload show."""

    workload: str
    service_account: str
    pods: int  # live pods its selector matches
    dataplanes: frozenset[str]  # how the pods in the mesh are in it
    outside: tuple[PodFinding, ...]  # pods outside the mesh, and why
    other_accounts: tuple[PodFinding, ...]  # pods running as another ServiceAccount
    account_missing: bool | None  # None: ServiceAccounts cannot be observed
    ignored_l7: tuple[str, ...]  # methods/paths rules on ports Istio treats as opaque

    def summary(self) -> dict[str, Any]:
        """`status.workloads[].mesh`."""
        found: dict[str, Any] = {
            "pods": self.pods,
            "inMesh": self.pods - len(self.outside),
            "dataplane": "+".join(sorted(self.dataplanes)) or "None",
        }
        if self.outside:
            found["outsideMesh"] = named(self.outside)
        if self.other_accounts:
            found["otherServiceAccounts"] = named(self.other_accounts)
        if self.account_missing:
            found["serviceAccountMissing"] = True
        return found


def named(findings: Sequence[PodFinding]) -> list[str]:
    """The first few, then how many more: messages stay short with a thousand pods."""
    shown = [str(f) for f in findings[:MAX_NAMED]]
    if len(findings) > MAX_NAMED:
        shown.append(f"and {len(findings) - MAX_NAMED} more")
    return shown


def mesh_posture(
    service: PaymentService,
    *,
    pods: Iterable[Body],
    namespace: Body | None,
    service_accounts: frozenset[str] | None,
    services: Iterable[Body],
) -> list[WorkloadMesh]:
    namespace_labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    live = [pod for pod in pods if _live(pod)]
    return [
        _workload_mesh(
            workload,
            [pod for pod in live if selects(workload.match_labels, _labels(pod))],
            namespace_labels=namespace_labels,
            service_accounts=service_accounts,
            services=list(services),
        )
        for workload in service.workloads
    ]


def _workload_mesh(
    workload: Workload,
    pods: list[Body],
    *,
    namespace_labels: Mapping[str, str],
    service_accounts: frozenset[str] | None,
    services: list[Body],
) -> WorkloadMesh:
    dataplanes, outside, other_accounts = set(), [], []
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        name = str(pod["metadata"]["name"])
        dataplane, why = pod_dataplane(pod, namespace_labels)
        if dataplane is None:
            outside.append(PodFinding(name, why))
        else:
            dataplanes.add(dataplane)
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        if account != workload.service_account:
            other_accounts.append(PodFinding(name, f"runs as {account}"))
    return WorkloadMesh(
        workload=workload.name,
        service_account=workload.service_account,
        pods=len(pods),
        dataplanes=frozenset(dataplanes),
        outside=tuple(outside),
        other_accounts=tuple(other_accounts),
        account_missing=None
        if service_accounts is None
        else workload.service_account not in service_accounts,
        ignored_l7=tuple(ignored_l7_rules(workload, pods, services)),
    )


def pod_dataplane(pod: Body, namespace_labels: Mapping[str, str]) -> tuple[str | None, str]:
    """How a pod is in the mesh (Sidecar, Ambient), or None and why it is not."""
    spec = pod.get("spec") or {}
    annotations = pod["metadata"].get("annotations") or {}
    if any(c.get("name") == PROXY_CONTAINER for c in spec.get("containers") or []) or any(
        c.get("name") == PROXY_CONTAINER and c.get("restartPolicy") == "Always"
        for c in spec.get("initContainers") or []
    ):
        return SIDECAR, ""
    if annotations.get(AMBIENT_REDIRECTION_ANNOTATION) == "enabled":
        return AMBIENT, ""
    return None, _why_outside(_labels(pod), annotations, namespace_labels)


def _why_outside(
    labels: Mapping[str, str], annotations: Mapping[str, str], namespace_labels: Mapping[str, str]
) -> str:
    """The most likely reason a pod has neither a sidecar nor ambient capture, in Istio's own terms."""
    pod_mode = labels.get(DATAPLANE_MODE_LABEL)
    namespace_mode = namespace_labels.get(DATAPLANE_MODE_LABEL)
    inject = labels.get(SIDECAR_INJECT, annotations.get(SIDECAR_INJECT))
    requested = (
        namespace_labels.get(INJECTION_LABEL) == "enabled"
        or REVISION_LABEL in namespace_labels
        or REVISION_LABEL in labels
        or inject == "true"
    )
    for applies, why in (
        (
            pod_mode == "ambient" or (namespace_mode == "ambient" and pod_mode != "none"),
            f"ambient mode requested but not captured: no {AMBIENT_REDIRECTION_ANNOTATION}=enabled",
        ),
        (namespace_mode == "ambient", f"opted out of ambient mode ({DATAPLANE_MODE_LABEL}=none), no sidecar"),
        (inject == "false", f"sidecar injection disabled on the pod ({SIDECAR_INJECT}=false)"),
        (namespace_labels.get(INJECTION_LABEL) == "disabled", f"namespace has {INJECTION_LABEL}=disabled"),
        (
            not requested,
            f"namespace not labelled for injection ({INJECTION_LABEL}=enabled or {REVISION_LABEL})",
        ),
    ):
        if applies:
            return why
    return f"no {PROXY_CONTAINER} container: created before injection was enabled? restart it"


def ignored_l7_rules(workload: Workload, pods: Sequence[Body], services: Iterable[Body]) -> list[str]:
    """Caller rules with methods or paths on a port whose Service Istio treats as opaque TCP/TLS: Istio
    ignores such a rule, and for an ALLOW policy that means the caller is denied."""
    l7_ports = {
        port
        for caller in workload.callers
        if caller.methods or caller.paths
        for port in (caller.ports or workload.port_numbers())
    }
    if not l7_ports or not pods:
        return []
    findings = []
    for service in services:
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector or not any(selects(selector, _labels(pod)) for pod in pods):
            continue
        for port in (service.get("spec") or {}).get("ports") or []:
            target = _target_port(port, pods)
            protocol = service_port_protocol(port)
            if target in l7_ports and protocol in OPAQUE_PROTOCOLS:
                label = port.get("name") or port.get("port")
                findings.append(
                    f"port {target}: Service {service['metadata']['name']} port {label} is {protocol}, "
                    "so Istio ignores the methods/paths rule and denies the caller"
                )
    return findings


def service_port_protocol(port: Mapping[str, Any]) -> str:
    """Istio's protocol selection: appProtocol, else the port name's prefix (`tcp-db` → tcp)."""
    declared = str(port.get("appProtocol") or "").lower()
    if declared:
        return declared
    return str(port.get("name") or "").lower().split("-", 1)[0]


def _target_port(port: Mapping[str, Any], pods: Sequence[Body]) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    for pod in pods:  # a named target port: what the pods' containers call it
        for container in (pod.get("spec") or {}).get("containers") or []:
            for declared in container.get("ports") or []:
                if declared.get("name") == target:
                    return int(declared["containerPort"])
    return None


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _labels(pod: Body) -> Mapping[str, str]:
    labels: Mapping[str, str] = pod["metadata"].get("labels") or {}
    return labels


def _live(pod: Body) -> bool:
    """Pods that serve or will: not finished, not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")
