"""Owns effective mTLS: the mode each workload's sidecar enforces, resolved the way istiod resolves it.

Pure: it reads plain dicts of PeerAuthentications and the typed model, and returns frozen findings. Istio's
own resolution rules are mirrored here so that an on-call engineer is told which object decides, not just
that something is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from payguard.model import PaymentService, Workload
from payguard.posture.objects import (
    age_key,
    is_being_deleted,
    mapping,
    namespace_of,
    namespaced_name,
    reference_of,
    selector_matches,
    spec_of,
)
from payguard.posture.scopes import DEFAULT_MESH_ROOT_NAMESPACE, MESH_WIDE, NAMESPACE_WIDE, WORKLOAD_SPECIFIC

STRICT = "STRICT"
PERMISSIVE = "PERMISSIVE"
DISABLE = "DISABLE"
# Weakest first: when several settings reach a workload, the weakest is the one to report.
_MODE_STRENGTH = {DISABLE: 0, PERMISSIVE: 1, STRICT: 2}
# What Istio enforces when no PeerAuthentication sets a mode.
ISTIO_DEFAULT_MODE = PERMISSIVE


@dataclass(frozen=True)
class MTLSPosture:
    """The mTLS mode a workload's sidecar enforces, and the PeerAuthentication that decides it."""

    workload: str
    mode: str
    strict: bool
    decided_by: str | None
    detail: str


def effective_mtls(
    service: PaymentService,
    peer_authentications: Iterable[Mapping[str, Any]],
    *,
    mesh_root_namespace: str = DEFAULT_MESH_ROOT_NAMESPACE,
) -> tuple[MTLSPosture, ...]:
    """The effective mTLS mode of each workload, in spec order, resolved the way istiod resolves it."""
    policies = tuple(policy for policy in peer_authentications if not is_being_deleted(policy))
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
    in_root = tuple(policy for policy in policies if namespace_of(policy) == mesh_root_namespace)
    # Istio ignores selector policies in the root namespace, so only its namespace-wide ones count.
    mesh_wide = tuple(policy for policy in in_root if not _has_workload_selector(policy))
    in_namespace = tuple(
        policy
        for policy in policies
        if namespace_of(policy) == service.namespace and service.namespace != mesh_root_namespace
    )
    namespace_wide = tuple(policy for policy in in_namespace if not _has_workload_selector(policy))
    workload_specific = tuple(
        policy
        for policy in in_namespace
        if _has_workload_selector(policy) and selector_matches(spec_of(policy).get("selector"), labels)
    )
    chosen_workload_policy = _oldest(workload_specific)
    base = _inherited_mode(
        (
            (MESH_WIDE, _oldest(mesh_wide), ""),
            (NAMESPACE_WIDE, _oldest(namespace_wide), ""),
            (
                WORKLOAD_SPECIFIC,
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
        mode = _mode_of(spec_of(policy).get("mtls")) if policy is not None else None
        if policy is None or mode is None:
            continue  # nothing at this level, or UNSET: the level above holds
        reference = reference_of("PeerAuthentication", policy)
        setting = _ModeSetting(
            mode=mode, decided_by=reference, detail=f"mTLS is {mode} by {reference} ({scope}{note})"
        )
    return setting


def _ignored_note(workload_specific: Sequence[Mapping[str, Any]], *, chosen: Mapping[str, Any] | None) -> str:
    """Says which matching workload policies Istio ignores because an older one wins."""
    ignored = sorted(namespaced_name(policy) for policy in workload_specific if policy is not chosen)
    if not ignored:
        return ""
    return f"; Istio uses the oldest matching policy and ignores {', '.join(ignored)}"


def _port_level_settings(policy: Mapping[str, Any] | None, workload: Workload) -> tuple[_ModeSetting, ...]:
    """Port overrides of the chosen workload policy that set a mode on a port the workload declares."""
    if policy is None:
        return ()
    reference = reference_of("PeerAuthentication", policy)
    declared = set(workload.port_numbers())
    modes: dict[int, str] = {}
    for key, setting in mapping(spec_of(policy).get("portLevelMtls")).items():
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
    mode = mapping(setting).get("mode")
    return mode if isinstance(mode, str) and mode in _MODE_STRENGTH else None


def _has_workload_selector(policy: Mapping[str, Any]) -> bool:
    # Istio treats a selector with no labels like no selector at all.
    return bool(mapping(mapping(spec_of(policy).get("selector")).get("matchLabels")))


def _oldest(policies: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Istio's pick among policies of one scope: the oldest, ties broken by name."""
    return min(policies, key=age_key, default=None)


def _port_number(key: object) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.isdigit():
        return int(key)
    return None
