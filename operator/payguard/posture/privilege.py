"""Owns least privilege: every object or identity that grants a workload more access than its spec declares.

Pure: it reads plain dicts of NetworkPolicies and AuthorizationPolicies and the typed model, and returns
frozen findings: foreign policies that allow traffic, and ServiceAccounts that are default or shared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from payguard.dataplane import SIDECAR_ONLY, Dataplanes, WorkloadDataplane
from payguard.kinds import DRY_RUN_ANNOTATION
from payguard.model import PaymentService, Workload
from payguard.posture.objects import (
    is_being_deleted,
    is_owned_by,
    mapping,
    metadata_of,
    namespace_of,
    reference_of,
    selector_matches,
    sequence,
    spec_of,
)
from payguard.posture.scopes import DEFAULT_MESH_ROOT_NAMESPACE, MESH_WIDE, NAMESPACE_WIDE, WORKLOAD_SPECIFIC
from payguard.posture.waypoints import waypoint_binding

# Kubernetes gives this ServiceAccount to every pod that names no other.
_DEFAULT_SERVICE_ACCOUNT_NAME = "default"

# Widening reasons.
# A NetworkPolicy payguard does not own selects the workload and allows more traffic (policies add up).
FOREIGN_NETWORK_POLICY = "ForeignNetworkPolicy"
# An enforced ALLOW AuthorizationPolicy payguard does not own applies to the workload (ALLOW policies add up).
FOREIGN_AUTHORIZATION_POLICY = "ForeignAuthorizationPolicy"
# The workload runs as the namespace's default ServiceAccount, an identity any pod can get.
DEFAULT_SERVICE_ACCOUNT = "DefaultServiceAccount"
# The workload's ServiceAccount is also used by another workload, so their identities are one.
SHARED_SERVICE_ACCOUNT = "SharedServiceAccount"

# strconv.ParseBool's true values: what istiod accepts for istio.io/dry-run.
_DRY_RUN_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


@dataclass(frozen=True)
class Widening:
    """An object or identity that grants a workload more access than its PaymentService declares."""

    workload: str
    kind: str
    object_ref: str
    reason: str
    detail: str


def least_privilege_findings(
    service: PaymentService,
    *,
    network_policies: Iterable[Mapping[str, Any]],
    authorization_policies: Iterable[Mapping[str, Any]],
    other_services: Iterable[PaymentService] = (),
    mesh_root_namespace: str = DEFAULT_MESH_ROOT_NAMESPACE,
    dataplanes: Dataplanes = SIDECAR_ONLY,
) -> tuple[Widening, ...]:
    """Everything that widens access to the service's workloads, in spec order, then by object."""
    foreign_network_policies = _foreign(network_policies, service=service)
    foreign_authorization_policies = _foreign(authorization_policies, service=service)
    neighbours = tuple(
        other
        for other in other_services
        if other.namespace == service.namespace and other.name != service.name
    )
    findings: list[Widening] = []
    for workload in service.workloads:
        widenings = [
            *_network_policy_widenings(service, workload, foreign_network_policies),
            *_authorization_policy_widenings(
                service,
                workload,
                foreign_authorization_policies,
                mesh_root_namespace=mesh_root_namespace,
                plane=dataplanes.of(workload.name),
            ),
            *_service_account_widenings(service, workload, neighbours),
        ]
        findings.extend(sorted(widenings, key=lambda widening: (widening.object_ref, widening.reason)))
    return tuple(findings)


def _foreign(
    objects: Iterable[Mapping[str, Any]], *, service: PaymentService
) -> tuple[Mapping[str, Any], ...]:
    return tuple(
        obj for obj in objects if not is_being_deleted(obj) and not is_owned_by(obj, service_uid=service.uid)
    )


def _network_policy_widenings(
    service: PaymentService, workload: Workload, policies: Sequence[Mapping[str, Any]]
) -> list[Widening]:
    widenings: list[Widening] = []
    for policy in policies:
        # A NetworkPolicy selects pods only in its own namespace.
        if namespace_of(policy) != service.namespace:
            continue
        spec = spec_of(policy)
        if not selector_matches(mapping(spec.get("podSelector")), workload.match_labels):
            continue
        allowed = _network_policy_allowances(spec, workload_name=workload.name)
        if not allowed:
            continue  # a policy without rules only denies, and denying never widens
        reference = reference_of("NetworkPolicy", policy)
        widenings.append(
            Widening(
                workload=workload.name,
                kind="NetworkPolicy",
                object_ref=reference,
                reason=FOREIGN_NETWORK_POLICY,
                detail=f"{reference} allows {' and '.join(allowed)}",
            )
        )
    return widenings


def _network_policy_allowances(spec: Mapping[str, Any], *, workload_name: str) -> list[str]:
    """The traffic a NetworkPolicy's rules allow, one phrase per direction; empty when it allows nothing."""
    policy_types = sequence(spec.get("policyTypes"))
    ingress_rules = sequence(spec.get("ingress"))
    egress_rules = sequence(spec.get("egress"))
    # Without policyTypes, Kubernetes governs Ingress always and Egress whenever egress rules exist,
    # so every rule present counts.
    governs_ingress = not policy_types or "Ingress" in policy_types
    governs_egress = not policy_types or "Egress" in policy_types
    allowed: list[str] = []
    if governs_ingress and ingress_rules:
        # A rule without peers matches every source.
        sources = (
            "any source"
            if any(not sequence(mapping(rule).get("from")) for rule in ingress_rules)
            else "the sources its rules list"
        )
        allowed.append(f"ingress to {workload_name} from {sources}")
    if governs_egress and egress_rules:
        destinations = (
            "any destination"
            if any(not sequence(mapping(rule).get("to")) for rule in egress_rules)
            else "the destinations its rules list"
        )
        allowed.append(f"egress from {workload_name} to {destinations}")
    return allowed


def _authorization_policy_widenings(
    service: PaymentService,
    workload: Workload,
    policies: Sequence[Mapping[str, Any]],
    *,
    mesh_root_namespace: str,
    plane: WorkloadDataplane,
) -> list[Widening]:
    widenings: list[Widening] = []
    for policy in policies:
        spec = spec_of(policy)
        # DENY, AUDIT and CUSTOM never grant a request; a dry-run policy is only logged, not enforced.
        if (spec.get("action") or "ALLOW") != "ALLOW" or _is_dry_run(policy):
            continue
        # targetRefs bind a policy to a Gateway, Service or waypoint, never to these pods' sidecars; in
        # ambient mode the waypoint serving the workload's Services enforces it for them.
        if spec.get("targetRefs") or spec.get("targetRef"):
            scope = waypoint_binding(policy, plane) if plane.ambient else None
        else:
            scope = _authorization_scope(
                policy,
                service_namespace=service.namespace,
                mesh_root_namespace=mesh_root_namespace,
                labels=workload.match_labels,
            )
        rules = sequence(spec.get("rules"))
        # An ALLOW policy without rules matches no request, so it allows nothing.
        if scope is None or not rules:
            continue
        reference = reference_of("AuthorizationPolicy", policy)
        what = (
            "every request"
            if any(_matches_every_request(rule) for rule in rules)
            else f"requests matching its {_count(len(rules), 'rule')}"
        )
        widenings.append(
            Widening(
                workload=workload.name,
                kind="AuthorizationPolicy",
                object_ref=reference,
                reason=FOREIGN_AUTHORIZATION_POLICY,
                detail=f"{reference} ({scope}) allows {what} to {workload.name}",
            )
        )
    return widenings


def _authorization_scope(
    policy: Mapping[str, Any], *, service_namespace: str, mesh_root_namespace: str, labels: Mapping[str, str]
) -> str | None:
    """How an AuthorizationPolicy reaches the workload's pods, or None when it does not."""
    selector = mapping(spec_of(policy).get("selector"))
    if not selector_matches(selector, labels):
        return None
    selects = bool(mapping(selector.get("matchLabels")))
    namespace = namespace_of(policy)
    if namespace == mesh_root_namespace:
        # In the root namespace a selector matches workloads in every namespace (Istio reference).
        return f"{MESH_WIDE}, by selector" if selects else MESH_WIDE
    if namespace == service_namespace:
        return WORKLOAD_SPECIFIC if selects else NAMESPACE_WIDE
    return None


def _matches_every_request(rule: object) -> bool:
    # A rule with no source, operation or condition matches any request: `rules: [{}]` allows all.
    item = mapping(rule)
    return not any(item.get(field) for field in ("from", "to", "when"))


def _is_dry_run(policy: Mapping[str, Any]) -> bool:
    return mapping(metadata_of(policy).get("annotations")).get(DRY_RUN_ANNOTATION) in _DRY_RUN_TRUE


def _service_account_widenings(
    service: PaymentService, workload: Workload, neighbours: Sequence[PaymentService]
) -> list[Widening]:
    account = workload.service_account
    reference = f"ServiceAccount {service.namespace}/{account}"
    if account == _DEFAULT_SERVICE_ACCOUNT_NAME:
        # Every pod without its own identity runs as default, so sharing it is implied and not repeated.
        return [
            Widening(
                workload=workload.name,
                kind="ServiceAccount",
                object_ref=reference,
                reason=DEFAULT_SERVICE_ACCOUNT,
                detail=f"{workload.name} runs as {reference}, which any pod in the namespace may use",
            )
        ]
    sharers = sorted(
        f"workload {other.name}"
        for other in service.workloads
        if other is not workload and other.service_account == account
    ) + sorted(
        f"workload {other.name} of PaymentService {neighbour.namespace}/{neighbour.name}"
        for neighbour in neighbours
        for other in neighbour.workloads
        if other.service_account == account
    )
    if not sharers:
        return []
    return [
        Widening(
            workload=workload.name,
            kind="ServiceAccount",
            object_ref=reference,
            reason=SHARED_SERVICE_ACCOUNT,
            detail=f"{reference} of {workload.name} is also used by {', '.join(sharers)}",
        )
    ]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def namespace_wide_callers(workload: Workload) -> list[str]:
    """Informational, not a widening: principal callers that name no pods, so the NetworkPolicy (which
    cannot see a ServiceAccount) admits their whole namespace and only L7 checks the identity."""
    return [
        f"callers[{index}] {caller.principal.namespace}/{caller.principal.service_account}: L3 admits "
        f"every pod of namespace {caller.principal.namespace}, L7 enforces the identity "
        "(principal.selector narrows L3 to its pods)"
        for index, caller in enumerate(workload.callers)
        if caller.principal is not None and not caller.pod_selector
    ]
