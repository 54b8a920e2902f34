"""Owns a workload's Istio policies: STRICT PeerAuthentication, least-privilege AuthorizationPolicy."""

from __future__ import annotations

from typing import Any

from payguard.kinds import DRY_RUN_ANNOTATION
from payguard.model import Caller, PaymentService, Workload
from payguard.render.metadata import ChildKind, Manifest, child_manifest


def peer_authentication(service: PaymentService, workload: Workload) -> Manifest:
    return child_manifest(
        ChildKind.PEER_AUTHENTICATION,
        service,
        workload,
        spec={"selector": {"matchLabels": workload.match_labels}, "mtls": {"mode": "STRICT"}},
    )


def authorization_policy(service: PaymentService, workload: Workload, *, dry_run: bool) -> Manifest:
    """ALLOW with one rule per caller; with no callers the policy has no rules, which allows nothing."""
    spec: dict[str, Any] = {"selector": {"matchLabels": workload.match_labels}, "action": "ALLOW"}
    rules = [_rule(service, caller) for caller in workload.callers]
    if rules:
        spec["rules"] = rules
    return child_manifest(
        ChildKind.AUTHORIZATION_POLICY,
        service,
        workload,
        spec=spec,
        annotations={DRY_RUN_ANNOTATION: "true"} if dry_run else None,
    )


def _rule(service: PaymentService, caller: Caller) -> dict[str, Any]:
    principal = service.caller_principal(caller).istio_principal(service.trust_domain)
    rule: dict[str, Any] = {"from": [{"source": {"principals": [principal]}}]}
    operation: dict[str, list[str]] = {}
    if caller.ports:
        operation["ports"] = [str(port) for port in caller.ports]  # Istio matches ports as strings
    if caller.methods:
        operation["methods"] = [str(method) for method in caller.methods]
    if caller.paths:
        operation["paths"] = list(caller.paths)
    if operation:
        rule["to"] = [{"operation": operation}]
    return rule
