"""Owns the security posture around a PaymentService's workloads: effective mTLS and whatever widens access.

Pure: it reads plain dicts of live objects (camelCase, as the Kubernetes API serves them) and the typed
model, and returns frozen findings. Istio's own resolution rules are mirrored here so that an on-call
engineer is told which object decides, not just that something is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from payguard.kinds import DRY_RUN_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE
from payguard.model import PaymentService, Workload

DEFAULT_MESH_ROOT_NAMESPACE = "istio-system"
# Kubernetes gives this ServiceAccount to every pod that names no other.
_DEFAULT_SERVICE_ACCOUNT_NAME = "default"

STRICT = "STRICT"
PERMISSIVE = "PERMISSIVE"
DISABLE = "DISABLE"
# Weakest first: when several settings reach a workload, the weakest is the one to report.
_MODE_STRENGTH = {DISABLE: 0, PERMISSIVE: 1, STRICT: 2}
# What Istio enforces when no PeerAuthentication sets a mode.
ISTIO_DEFAULT_MODE = PERMISSIVE

# Scopes of an Istio policy, in the words the findings use.
_WORKLOAD_SPECIFIC = "workload-specific"
_NAMESPACE_WIDE = "namespace-wide"
_MESH_WIDE = "mesh-wide"

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
# An object the API server never stored has no creation time; it cannot be older than one it did store.
_NOT_YET_CREATED = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class MTLSPosture:
    """The mTLS mode a workload's sidecar enforces, and the PeerAuthentication that decides it."""

    workload: str
    mode: str
    strict: bool
    decided_by: str | None
    detail: str


@dataclass(frozen=True)
class Widening:
    """An object or identity that grants a workload more access than its PaymentService declares."""

    workload: str
    kind: str
    object_ref: str
    reason: str
    detail: str


# --- ownership and selection -----------------------------------------------------------------------------


def is_owned_by(obj: Mapping[str, Any], *, service_uid: str) -> bool:
    """True when payguard manages obj for the PaymentService with this uid: its label and controller."""
    if not service_uid:
        return False  # an unsaved PaymentService owns nothing
    metadata = _metadata(obj)
    if _mapping(metadata.get("labels")).get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return False
    return any(
        reference.get("controller") is True and reference.get("uid") == service_uid
        for reference in _mappings(metadata.get("ownerReferences"))
    )


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics against a pod's labels; None or {} selects everything."""
    if not selector:
        return True
    match_labels = _mapping(selector.get("matchLabels"))
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    return all(
        _expression_matches(expression, labels) for expression in _mappings(selector.get("matchExpressions"))
    )


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = expression.get("key")
    operator = expression.get("operator")
    values = _sequence(expression.get("values"))
    value = labels.get(key) if isinstance(key, str) else None
    present = value is not None
    if operator == "In":
        return present and value in values
    if operator == "NotIn":
        return not present or value not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    return False  # the API server rejects other operators; should one slip through, it selects nothing


# --- effective mTLS --------------------------------------------------------------------------------------


def effective_mtls(
    service: PaymentService,
    peer_authentications: Iterable[Mapping[str, Any]],
    *,
    mesh_root_namespace: str = DEFAULT_MESH_ROOT_NAMESPACE,
) -> tuple[MTLSPosture, ...]:
    """The effective mTLS mode of each workload, in spec order, resolved the way istiod resolves it."""
    policies = tuple(policy for policy in peer_authentications if not _is_being_deleted(policy))
    return tuple(
        _workload_mtls(service, workload, policies, mesh_root_namespace=mesh_root_namespace)
        for workload in service.workloads
    )


@dataclass(frozen=True)
class _ModeSetting:
    """One mode that reaches the workload, where it comes from, and how to say so."""

    mode: str
    decided_by: str | None
    detail: str


def _workload_mtls(
    service: PaymentService,
    workload: Workload,
    policies: Sequence[Mapping[str, Any]],
    *,
    mesh_root_namespace: str,
) -> MTLSPosture:
    labels = workload.match_labels
    in_root = tuple(policy for policy in policies if _namespace(policy) == mesh_root_namespace)
    # Istio ignores selector policies in the root namespace, so only its namespace-wide ones count.
    mesh_wide = tuple(policy for policy in in_root if not _has_workload_selector(policy))
    in_namespace = tuple(
        policy
        for policy in policies
        if _namespace(policy) == service.namespace and service.namespace != mesh_root_namespace
    )
    namespace_wide = tuple(policy for policy in in_namespace if not _has_workload_selector(policy))
    workload_specific = tuple(
        policy
        for policy in in_namespace
        if _has_workload_selector(policy) and selector_matches(_spec(policy).get("selector"), labels)
    )
    chosen_workload_policy = _oldest(workload_specific)
    base = _inherited_mode(
        (
            (_MESH_WIDE, _oldest(mesh_wide), ""),
            (_NAMESPACE_WIDE, _oldest(namespace_wide), ""),
            (
                _WORKLOAD_SPECIFIC,
                chosen_workload_policy,
                _ignored_note(workload_specific, chosen=chosen_workload_policy),
            ),
        )
    )
    # The weakest setting reaching a declared port decides; on a tie the workload-wide one is named.
    weakest = min((base, *_port_level_settings(chosen_workload_policy, workload)), key=_strength)
    return MTLSPosture(
        workload=workload.name,
        mode=weakest.mode,
        strict=weakest.mode == STRICT,
        decided_by=weakest.decided_by,
        detail=weakest.detail,
    )


def _inherited_mode(levels: Sequence[tuple[str, Mapping[str, Any] | None, str]]) -> _ModeSetting:
    """Walks mesh, namespace, workload: each level that sets a mode overrides; UNSET inherits."""
    setting = _ModeSetting(
        mode=ISTIO_DEFAULT_MODE,
        decided_by=None,
        detail=f"no PeerAuthentication sets a mode, so Istio's default {ISTIO_DEFAULT_MODE} applies",
    )
    for scope, policy, note in levels:
        mode = _mode_of(_spec(policy).get("mtls")) if policy is not None else None
        if policy is None or mode is None:
            continue  # nothing at this level, or UNSET: the level above holds
        reference = _reference("PeerAuthentication", policy)
        setting = _ModeSetting(
            mode=mode, decided_by=reference, detail=f"mTLS is {mode} by {reference} ({scope}{note})"
        )
    return setting


def _ignored_note(workload_specific: Sequence[Mapping[str, Any]], *, chosen: Mapping[str, Any] | None) -> str:
    """Says which matching workload policies Istio ignores because an older one wins."""
    ignored = sorted(_namespaced_name(policy) for policy in workload_specific if policy is not chosen)
    if not ignored:
        return ""
    return f"; Istio uses the oldest matching policy and ignores {', '.join(ignored)}"


def _port_level_settings(policy: Mapping[str, Any] | None, workload: Workload) -> tuple[_ModeSetting, ...]:
    """Port overrides of the chosen workload policy that set a mode on a port the workload declares."""
    if policy is None:
        return ()
    reference = _reference("PeerAuthentication", policy)
    declared = set(workload.port_numbers())
    modes: dict[int, str] = {}
    for key, setting in _mapping(_spec(policy).get("portLevelMtls")).items():
        port = _port_number(key)
        mode = _mode_of(setting)
        # UNSET on a port inherits the workload's mode, which is already accounted for.
        if port in declared and mode is not None:
            modes[port] = mode
    return tuple(
        _ModeSetting(
            mode=mode, decided_by=reference, detail=f"port {port} is {mode} by {reference} (portLevelMtls)"
        )
        for port, mode in sorted(modes.items())
    )


def _strength(setting: _ModeSetting) -> int:
    return _MODE_STRENGTH[setting.mode]


def _mode_of(setting: object) -> str | None:
    """The mode an `mtls` block sets, or None for UNSET (missing, UNSET or unknown inherit from above)."""
    mode = _mapping(setting).get("mode")
    return mode if isinstance(mode, str) and mode in _MODE_STRENGTH else None


def _has_workload_selector(policy: Mapping[str, Any]) -> bool:
    # Istio treats a selector with no labels like no selector at all.
    return bool(_mapping(_mapping(_spec(policy).get("selector")).get("matchLabels")))


def _oldest(policies: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Istio's pick among policies of one scope: the oldest, ties broken by name."""
    return min(policies, key=_age_key, default=None)


def _age_key(obj: Mapping[str, Any]) -> tuple[datetime, str]:
    return _creation_time(obj), _name(obj)


def _creation_time(obj: Mapping[str, Any]) -> datetime:
    text = _metadata(obj).get("creationTimestamp")
    if not isinstance(text, str):
        return _NOT_YET_CREATED
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _NOT_YET_CREATED
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _port_number(key: object) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.isdigit():
        return int(key)
    return None


# --- least privilege -------------------------------------------------------------------------------------


def least_privilege_findings(
    service: PaymentService,
    *,
    network_policies: Iterable[Mapping[str, Any]],
    authorization_policies: Iterable[Mapping[str, Any]],
    other_services: Iterable[PaymentService] = (),
    mesh_root_namespace: str = DEFAULT_MESH_ROOT_NAMESPACE,
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
                service, workload, foreign_authorization_policies, mesh_root_namespace=mesh_root_namespace
            ),
            *_service_account_widenings(service, workload, neighbours),
        ]
        findings.extend(sorted(widenings, key=lambda widening: (widening.object_ref, widening.reason)))
    return tuple(findings)


def _foreign(
    objects: Iterable[Mapping[str, Any]], *, service: PaymentService
) -> tuple[Mapping[str, Any], ...]:
    return tuple(
        obj for obj in objects if not _is_being_deleted(obj) and not is_owned_by(obj, service_uid=service.uid)
    )


def _network_policy_widenings(
    service: PaymentService, workload: Workload, policies: Sequence[Mapping[str, Any]]
) -> list[Widening]:
    widenings: list[Widening] = []
    for policy in policies:
        # A NetworkPolicy selects pods only in its own namespace.
        if _namespace(policy) != service.namespace:
            continue
        spec = _spec(policy)
        if not selector_matches(_mapping(spec.get("podSelector")), workload.match_labels):
            continue
        allowed = _network_policy_allowances(spec, workload_name=workload.name)
        if not allowed:
            continue  # a policy without rules only denies, and denying never widens
        reference = _reference("NetworkPolicy", policy)
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
    policy_types = _sequence(spec.get("policyTypes"))
    ingress_rules = _sequence(spec.get("ingress"))
    egress_rules = _sequence(spec.get("egress"))
    # Without policyTypes, Kubernetes governs Ingress always and Egress whenever egress rules exist,
    # so every rule present counts.
    governs_ingress = not policy_types or "Ingress" in policy_types
    governs_egress = not policy_types or "Egress" in policy_types
    allowed: list[str] = []
    if governs_ingress and ingress_rules:
        # A rule without peers matches every source.
        sources = (
            "any source"
            if any(not _sequence(_mapping(rule).get("from")) for rule in ingress_rules)
            else "the sources its rules list"
        )
        allowed.append(f"ingress to {workload_name} from {sources}")
    if governs_egress and egress_rules:
        destinations = (
            "any destination"
            if any(not _sequence(_mapping(rule).get("to")) for rule in egress_rules)
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
) -> list[Widening]:
    widenings: list[Widening] = []
    for policy in policies:
        spec = _spec(policy)
        # DENY, AUDIT and CUSTOM never grant a request; a dry-run policy is only logged, not enforced.
        if (spec.get("action") or "ALLOW") != "ALLOW" or _is_dry_run(policy):
            continue
        # targetRefs bind a policy to a Gateway, Service or waypoint, never to these pods' sidecars.
        if spec.get("targetRefs") or spec.get("targetRef"):
            continue
        scope = _authorization_scope(
            policy,
            service_namespace=service.namespace,
            mesh_root_namespace=mesh_root_namespace,
            labels=workload.match_labels,
        )
        rules = _sequence(spec.get("rules"))
        # An ALLOW policy without rules matches no request, so it allows nothing.
        if scope is None or not rules:
            continue
        reference = _reference("AuthorizationPolicy", policy)
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
    selector = _mapping(_spec(policy).get("selector"))
    if not selector_matches(selector, labels):
        return None
    selects = bool(_mapping(selector.get("matchLabels")))
    namespace = _namespace(policy)
    if namespace == mesh_root_namespace:
        # In the root namespace a selector matches workloads in every namespace (Istio reference).
        return f"{_MESH_WIDE}, by selector" if selects else _MESH_WIDE
    if namespace == service_namespace:
        return _WORKLOAD_SPECIFIC if selects else _NAMESPACE_WIDE
    return None


def _matches_every_request(rule: object) -> bool:
    # A rule with no source, operation or condition matches any request: `rules: [{}]` allows all.
    item = _mapping(rule)
    return not any(item.get(field) for field in ("from", "to", "when"))


def _is_dry_run(policy: Mapping[str, Any]) -> bool:
    return _mapping(_metadata(policy).get("annotations")).get(DRY_RUN_ANNOTATION) in _DRY_RUN_TRUE


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


# --- reading live objects: a missing or mistyped field reads as empty, never raises -----------------------


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("spec"))


def _namespace(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("namespace") or "")


def _name(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("name") or "")


def _namespaced_name(obj: Mapping[str, Any]) -> str:
    return f"{_namespace(obj)}/{_name(obj)}"


def _reference(kind: str, obj: Mapping[str, Any]) -> str:
    return f"{kind} {_namespaced_name(obj)}"


def _is_being_deleted(obj: Mapping[str, Any]) -> bool:
    return bool(_metadata(obj).get("deletionTimestamp"))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _mappings(value: object) -> tuple[Mapping[str, Any], ...]:
    return tuple(item for item in _sequence(value) if isinstance(item, Mapping))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
