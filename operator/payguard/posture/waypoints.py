"""Owns what waypoints mean for posture (pure): L7 rules no waypoint can enforce, and foreign policies bound
through `targetRefs` to a waypoint or a Service it serves, which widen access like a selector policy does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payguard.dataplane import Dataplanes, WorkloadDataplane
from payguard.kinds import USE_WAYPOINT_LABEL
from payguard.model import Caller, PaymentService
from payguard.posture.objects import mapping, namespace_of, sequence, spec_of

GATEWAY_GROUP = "gateway.networking.k8s.io"


def l7_without_waypoint(service: PaymentService, planes: Dataplanes) -> tuple[str, ...]:
    """Per ambient workload with methods/paths rules and no waypoint: why those rules are not enforced."""
    findings = []
    for workload in service.workloads:
        plane = planes.of(workload.name)
        l7 = [_caller_name(c) for c in workload.callers if c.methods or c.paths]
        if not plane.ambient or not l7 or plane.waypoint_services:
            continue
        findings.append(
            f"{workload.name}: runs in ambient mode and no waypoint serves a Service of it "
            f"(label the Service or namespace {USE_WAYPOINT_LABEL}=<waypoint>), so ztunnel cannot enforce "
            f"the methods/paths rules of {', '.join(l7)}; those callers are denied"
        )
    return tuple(findings)


def l7_bypassing_waypoint(service: PaymentService, planes: Dataplanes) -> tuple[str, ...]:
    """Per ambient workload with methods/paths rules whose pods name a waypoint of their own: traffic
    addressed to those pods passes that waypoint, where payguard's policy (bound to Services) does not
    apply, and reaches ztunnel as the waypoint, which it admits."""
    findings = []
    for workload in service.workloads:
        plane = planes.of(workload.name)
        if plane.pod_waypoints and any(c.methods or c.paths for c in workload.callers):
            pods = ", ".join(plane.pod_waypoints[:5]) + (" and more" if len(plane.pod_waypoints) > 5 else "")
            findings.append(
                f"{workload.name}: pods {pods} use a waypoint for traffic addressed to them, where the "
                f"methods/paths rules bound to its Services do not apply; remove the pod label"
            )
    return tuple(findings)


def waypoint_binding(policy: Mapping[str, Any], plane: WorkloadDataplane) -> str | None:
    """How a policy with targetRefs reaches the workload through its waypoint, or None when it does not."""
    spec = spec_of(policy)
    refs = [mapping(ref) for ref in sequence(spec.get("targetRefs"))]
    if spec.get("targetRef"):
        refs.append(mapping(spec.get("targetRef")))
    namespace = namespace_of(policy)
    for ref in refs:
        kind, group, name = ref.get("kind"), ref.get("group") or "", ref.get("name")
        for service_name, waypoint in plane.waypoint_services:
            if kind == "Service" and group == "" and name == service_name:
                return f"bound to Service {service_name}, served by waypoint {waypoint.name}"
            gateway = ("Gateway", GATEWAY_GROUP, waypoint.name, waypoint.namespace)
            if (kind, group, name, namespace) == gateway:
                return f"bound to waypoint {waypoint.namespace}/{waypoint.name}, which serves {service_name}"
    return None


def _caller_name(caller: Caller) -> str:
    if caller.workload is not None:
        return f"workload {caller.workload}"
    assert caller.principal is not None
    return f"principal {caller.principal.namespace}/{caller.principal.service_account}"
