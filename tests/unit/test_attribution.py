"""Who drifted a child: the field managers in managedFields that own the drifted fields."""

from __future__ import annotations

from typing import Any

from payguard.attribution import drift_authors

PAYGUARD = {
    "manager": "payguard",
    "operation": "Apply",
    "time": "2026-12-01T10:00:00Z",
    "fieldsV1": {"f:spec": {"f:mtls": {"f:mode": {}}, "f:selector": {}}},
}


def entry(
    manager: str, fields: dict[str, Any], time: str = "2026-12-01T11:00:00Z", operation: str = "Update"
) -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "time": time, "fieldsV1": fields}


def test_the_manager_owning_the_drifted_field_is_named_and_payguard_never_is() -> None:
    edit = entry("kubectl-edit", {"f:spec": {"f:mtls": {"f:mode": {}}}})
    labels = entry(
        "argocd-controller", {"f:metadata": {"f:labels": {"f:team": {}}}}, time="2026-12-01T12:00:00Z"
    )

    assert drift_authors([PAYGUARD, edit, labels], ["spec.mtls.mode"]) == ("kubectl-edit (Update)",)


def test_bracketed_keys_and_list_items_are_matched_to_their_field() -> None:
    annotation = entry(
        "tamper-test", {"f:metadata": {"f:annotations": {"f:istio.io/dry-run": {}}}}, operation="Apply"
    )
    rules = entry("kubectl-patch", {"f:spec": {"f:rules": {}}})

    assert drift_authors([PAYGUARD, annotation, rules], ["metadata.annotations[istio.io/dry-run]"]) == (
        "tamper-test (Apply)",
    )
    assert drift_authors([PAYGUARD, annotation, rules], ["spec.rules[0].from"]) == ("kubectl-patch (Update)",)


def test_without_a_matching_owner_the_last_writer_is_named_and_with_none_nobody() -> None:
    old = entry("helm", {"f:metadata": {}}, time="2026-11-01T00:00:00Z")
    new = entry("kubectl-client-side-apply", {"f:metadata": {}}, time="2026-12-01T00:00:00Z")

    assert drift_authors([PAYGUARD, old, new], ["spec.portLevelMtls"]) == (
        "kubectl-client-side-apply (Update)",
    )
    assert drift_authors([PAYGUARD], ["spec.mtls.mode"]) == ()
