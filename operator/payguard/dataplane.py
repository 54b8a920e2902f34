"""Owns which Istio data plane each workload runs in, read from Istio's own labels, never guessed (pure).

Ambient mode is chosen by `istio.io/dataplane-mode=ambient` on the namespace or the pod (a pod's `none`
opts it out, and a pod with a sidecar keeps it), or shown by istio-cni's capture mark on the pod. A
waypoint serves a Service that carries `istio.io/use-waypoint=<Gateway>` or whose namespace does (`none`
opts out); the waypoint runs in the namespace named by `istio.io/use-waypoint-namespace`, else in the
labelled object's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from payguard.kinds import (
    AMBIENT_REDIRECTION_ANNOTATION,
    DATAPLANE_MODE_LABEL,
    GATEWAY_NAME_LABEL,
    PROXY_CONTAINER,
    USE_WAYPOINT_LABEL,
    USE_WAYPOINT_NAMESPACE_LABEL,
)
from payguard.model import PaymentService, Workload

Body = Mapping[str, Any]
AMBIENT = "ambient"
OPT_OUT = "none"  # Istio's value for "not ambient" (dataplane-mode) and "no waypoint" (use-waypoint)
# ztunnel carries mesh traffic between pods over HBONE (HTTP CONNECT in mutual TLS) on this port.
HBONE_PORT = 15008
# In ambient mode kubelet's probes reach a pod from this link-local address (istio-cni SNATs them), not
# from the node, so a default-deny NetworkPolicy must admit it on the workload's ports.
PROBE_SOURCE_CIDR = "169.254.7.127/32"


@dataclass(frozen=True, order=True)
class Waypoint:
    """A waypoint proxy: a Gateway of class istio-waypoint, and the ServiceAccount its pods run as."""

    namespace: str
    name: str
    service_account: str  # observed on its pods when they are visible, else Istio's default: its name

    def principal(self, trust_domain: str) -> str:
        return f"{trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def pod_labels(self) -> dict[str, str]:
        return {GATEWAY_NAME_LABEL: self.name}


@dataclass(frozen=True)
class WorkloadDataplane:
    """How one workload is in the mesh, and which of its Services a waypoint serves."""

    workload: str
    ambient: bool = False
    why: str = "sidecar mode: no istio.io/dataplane-mode=ambient on its namespace or pods"
    # (Service name, its waypoint), sorted by Service name: where L7 rules can be enforced.
    waypoint_services: tuple[tuple[str, Waypoint], ...] = ()
    # Pods labelled with a waypoint of their own: traffic addressed to them goes through it, where
    # policies bound to a Service do not apply.
    pod_waypoints: tuple[str, ...] = ()

    @property
    def waypoints(self) -> tuple[Waypoint, ...]:
        return tuple(sorted({waypoint for _, waypoint in self.waypoint_services}))

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.waypoint_services)


@dataclass(frozen=True)
class Dataplanes:
    """Every workload's data plane; a workload not listed runs in sidecar mode."""

    by_workload: Mapping[str, WorkloadDataplane] = field(default_factory=dict)

    def of(self, workload: str) -> WorkloadDataplane:
        return self.by_workload.get(workload) or WorkloadDataplane(workload)

    @property
    def any_ambient(self) -> bool:
        return any(plane.ambient for plane in self.by_workload.values())


SIDECAR_ONLY = Dataplanes()


def dataplanes(
    service: PaymentService, *, namespace: Body | None, pods: Iterable[Body], services: Iterable[Body]
) -> Dataplanes:
    """Each workload's data plane from the namespace, its live pods and the Services that select them."""
    namespace_labels = _labels(namespace or {})
    live = [pod for pod in pods if not _metadata(pod).get("deletionTimestamp")]
    service_list = list(services)
    planes = {}
    for workload in service.workloads:
        selected = [pod for pod in live if _selects(workload.match_labels, _labels(pod))]
        ambient, why = _mode(selected, service.namespace, namespace_labels)
        waypoints: tuple[tuple[str, Waypoint], ...] = ()
        if ambient:
            waypoints = _waypoint_services(
                service,
                workload,
                selected,
                services=service_list,
                namespace_labels=namespace_labels,
                live=live,
            )
        planes[workload.name] = WorkloadDataplane(
            workload.name, ambient, why, waypoints, _pod_waypoints(selected) if ambient else ()
        )
    return Dataplanes(planes)


def _pod_waypoints(pods: list[Body]) -> tuple[str, ...]:
    return tuple(
        sorted(
            f"{_metadata(pod).get('name')} ({USE_WAYPOINT_LABEL}={_labels(pod)[USE_WAYPOINT_LABEL]})"
            for pod in pods
            if _labels(pod).get(USE_WAYPOINT_LABEL, OPT_OUT) != OPT_OUT
        )
    )


def _mode(pods: list[Body], namespace: str, namespace_labels: Mapping[str, str]) -> tuple[bool, str]:
    """Ambient when a selected pod is enrolled or asks to be; with no pods yet, what the namespace asks."""
    namespace_ambient = namespace_labels.get(DATAPLANE_MODE_LABEL) == AMBIENT
    by_namespace = f"ambient mode: namespace {namespace} has {DATAPLANE_MODE_LABEL}={AMBIENT}"
    for pod in sorted(pods, key=lambda p: str(_metadata(p).get("name"))):
        why = _pod_ambient(pod, by_namespace if namespace_ambient else None)
        if why:
            return True, why
    if namespace_ambient and not pods:
        return True, by_namespace
    if any(_has_sidecar(pod) for pod in pods):
        return False, f"sidecar mode: its pods run {PROXY_CONTAINER}, which ambient mode leaves alone"
    if namespace_ambient:
        return False, f"sidecar mode: every pod opts out of ambient ({DATAPLANE_MODE_LABEL}=none)"
    return False, WorkloadDataplane("").why


def _pod_ambient(pod: Body, by_namespace: str | None) -> str | None:
    """Why this pod is in ambient mode, or None; `by_namespace` when its namespace asks for ambient."""
    name = _metadata(pod).get("name")
    if (_metadata(pod).get("annotations") or {}).get(AMBIENT_REDIRECTION_ANNOTATION) == "enabled":
        return f"ambient mode: pod {name} is captured ({AMBIENT_REDIRECTION_ANNOTATION}=enabled)"
    if _has_sidecar(pod):  # istio-cni leaves a pod with a sidecar to its sidecar
        return None
    pod_mode = _labels(pod).get(DATAPLANE_MODE_LABEL)
    if pod_mode == AMBIENT:
        return f"ambient mode: pod {name} has {DATAPLANE_MODE_LABEL}={AMBIENT}"
    return by_namespace if pod_mode != OPT_OUT else None


def _has_sidecar(pod: Body) -> bool:
    spec = pod.get("spec") or {}
    return any(c.get("name") == PROXY_CONTAINER for c in spec.get("containers") or []) or any(
        c.get("name") == PROXY_CONTAINER and c.get("restartPolicy") == "Always"
        for c in spec.get("initContainers") or []
    )


def _waypoint_services(
    service: PaymentService,
    workload: Workload,
    pods: list[Body],
    *,
    services: list[Body],
    namespace_labels: Mapping[str, str],
    live: list[Body],
) -> tuple[tuple[str, Waypoint], ...]:
    """The workload's Services that a waypoint serves: the Service's own label, else its namespace's."""
    found = []
    for candidate in services:
        selector = (candidate.get("spec") or {}).get("selector") or {}
        if not selector or not _serves(selector, workload, pods):
            continue
        labels = _labels(candidate)
        source = labels if USE_WAYPOINT_LABEL in labels else namespace_labels
        name = source.get(USE_WAYPOINT_LABEL)
        if not name or name == OPT_OUT:
            continue
        waypoint_namespace = source.get(USE_WAYPOINT_NAMESPACE_LABEL) or service.namespace
        account = _observed_account(name, waypoint_namespace, live, service.namespace)
        found.append((str(_metadata(candidate)["name"]), Waypoint(waypoint_namespace, name, account)))
    return tuple(sorted(found))


def _serves(selector: Mapping[str, str], workload: Workload, pods: list[Body]) -> bool:
    """A Service serves the workload when it selects one of its pods, or (no pods yet) its labels."""
    if pods:
        return any(_selects(selector, _labels(pod)) for pod in pods)
    return _selects(selector, workload.match_labels)


def _observed_account(name: str, waypoint_namespace: str, pods: list[Body], namespace: str) -> str:
    """The ServiceAccount the waypoint's pods run as, when they are in view; else Istio's default for a
    waypoint, its Gateway's name (overridable on the Gateway, which is why the pods are read first)."""
    if waypoint_namespace == namespace:
        accounts = sorted(
            {
                str((pod.get("spec") or {}).get("serviceAccountName") or "default")
                for pod in pods
                if _labels(pod).get(GATEWAY_NAME_LABEL) == name
            }
        )
        if accounts:
            return accounts[0]
    return name


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _metadata(body: Body) -> Mapping[str, Any]:
    return body.get("metadata") or {}


def _labels(body: Body) -> Mapping[str, str]:
    return _metadata(body).get("labels") or {}
