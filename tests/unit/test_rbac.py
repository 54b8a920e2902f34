"""The operator's RBAC stays least-privilege: no wildcards, no Secrets, no privilege escalation verbs."""

from __future__ import annotations

import pytest

from operator_harness import rbac_rules

FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*"}


@pytest.mark.parametrize("rule", rbac_rules(), ids=lambda r: ",".join(r["resources"]))
def test_rule_names_every_group_resource_and_verb_explicitly(rule: dict[str, list[str]]) -> None:
    for field in ("apiGroups", "resources", "verbs"):
        assert "*" not in rule[field], f"wildcard in {field}: {rule}"
    assert not FORBIDDEN_VERBS & set(rule["verbs"]), rule
    assert "secrets" not in rule["resources"], "payguard must never read Secrets"


def test_rules_grant_exactly_what_the_operator_uses() -> None:
    granted = {
        (group, resource, verb)
        for rule in rbac_rules()
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    writes = {"create", "patch", "delete"}
    # patch: payguard's finalizer only (the spec is the platform team's)
    expected = {("payguard.dev", "paymentservices", v) for v in ("list", "watch", "patch")}
    expected |= {("payguard.dev", "paymentserviceexceptions", v) for v in ("list", "watch")}
    expected |= {
        ("payguard.dev", "paymentservices/status", "patch"),
        ("payguard.dev", "paymentservices/finalizers", "update"),
    }
    for group, resource in (
        ("security.istio.io", "peerauthentications"),
        ("security.istio.io", "authorizationpolicies"),
        ("networking.k8s.io", "networkpolicies"),
        ("cert-manager.io", "certificates"),
    ):
        expected |= {(group, resource, v) for v in ("list", "watch", *writes)}
    expected |= {
        ("cert-manager.io", resource, verb)
        for resource in ("certificaterequests", "issuers", "clusterissuers")
        for verb in ("list", "watch")
    }
    expected |= {
        ("", resource, v)
        for resource in ("namespaces", "pods", "serviceaccounts", "services")
        for v in ("list", "watch")
    }
    expected |= {("events.k8s.io", "events", v) for v in ("create", "patch")}
    expected |= {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}
    assert granted == expected
