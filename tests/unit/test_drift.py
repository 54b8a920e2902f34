"""Drift: which field paths of a live child differ from what payguard rendered, and which keys are foreign."""

from __future__ import annotations

import copy
from typing import Any

from payguard.drift import Drift, detect_drift, format_keys

UID = "00000000-0000-0000-0000-000000000001"


# --- builders --------------------------------------------------------------------------------------------


def desired_peer_authentication() -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {
            "name": "checkout-api",
            "namespace": "payments",
            "labels": {
                "app.kubernetes.io/managed-by": "payguard",
                "payguard.dev/payment-service": "checkout",
                "payguard.dev/workload": "api",
            },
            "annotations": {"payguard.dev/pci-dss-requirements": "4.2.1,8.3.2"},
            "ownerReferences": [
                {
                    "apiVersion": "payguard.dev/v1alpha1",
                    "kind": "PaymentService",
                    "name": "checkout",
                    "uid": UID,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "mtls": {"mode": "STRICT"}},
    }


def desired_authorization_policy(*, dry_run: bool = False) -> dict[str, Any]:
    manifest = desired_peer_authentication()
    manifest["kind"] = "AuthorizationPolicy"
    manifest["metadata"]["annotations"] = {"payguard.dev/pci-dss-requirements": "7.2.1,7.2.2"}
    if dry_run:
        manifest["metadata"]["annotations"]["istio.io/dry-run"] = "true"
    manifest["spec"] = {
        "selector": {"matchLabels": {"app": "api"}},
        "action": "ALLOW",
        "rules": [
            {
                "from": [{"source": {"principals": ["cluster.local/ns/payments/sa/gateway"]}}],
                "to": [{"operation": {"ports": ["8443"], "methods": ["POST"]}}],
            }
        ],
    }
    return manifest


def live_copy(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns for an untouched apply: the desired object plus server-set fields."""
    live = copy.deepcopy(desired)
    metadata = live["metadata"]
    metadata.update(
        {
            "uid": "11111111-1111-1111-1111-111111111111",
            "resourceVersion": "4711",
            "generation": 1,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [{"manager": "payguard", "operation": "Apply", "fieldsType": "FieldsV1"}],
        }
    )
    metadata["labels"]["team"] = "payments"
    metadata["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    return live


# --- format_keys -----------------------------------------------------------------------------------------


def test_plain_keys_are_joined_with_dots() -> None:
    assert format_keys(("spec", "mtls", "mode")) == "spec.mtls.mode"


def test_keys_with_dots_or_slashes_are_formatted_in_brackets() -> None:
    assert (
        format_keys(("spec", "selector", "matchLabels", "app.kubernetes.io/name"))
        == "spec.selector.matchLabels[app.kubernetes.io/name]"
    )
    assert format_keys(("metadata", "annotations", "istio.io/dry-run")) == (
        "metadata.annotations[istio.io/dry-run]"
    )
    assert format_keys(("metadata", "labels", "team/owner")) == "metadata.labels[team/owner]"


def test_a_single_key_is_formatted_as_itself() -> None:
    assert format_keys(("spec",)) == "spec"


# --- no drift --------------------------------------------------------------------------------------------


def test_identical_objects_have_no_drift() -> None:
    desired = desired_authorization_policy()
    drift = detect_drift(desired, copy.deepcopy(desired))
    assert drift == Drift()
    assert not drift
    assert drift.paths == ()


def test_server_added_metadata_is_not_drift() -> None:
    desired = desired_authorization_policy()
    drift = detect_drift(desired, live_copy(desired))
    assert drift == Drift()
    assert not drift


def test_extra_owner_references_besides_payguards_are_not_drift() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    live["metadata"]["ownerReferences"].insert(
        0, {"apiVersion": "v1", "kind": "ConfigMap", "name": "anchor", "uid": "other"}
    )
    assert not detect_drift(desired, live)


# --- changed ---------------------------------------------------------------------------------------------


def test_changed_leaf_is_reported_by_its_path() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    live["spec"]["mtls"]["mode"] = "PERMISSIVE"
    drift = detect_drift(desired, live)
    assert drift.changed == ("spec.mtls.mode",)
    assert drift.foreign == ()
    assert drift.paths == ("spec.mtls.mode",)
    assert drift


def test_missing_desired_label_is_reported_in_brackets() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    del live["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    drift = detect_drift(desired, live)
    assert drift.changed == ("metadata.labels[app.kubernetes.io/managed-by]",)
    assert drift.foreign == ()


def test_changed_desired_annotation_is_drift() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    live["metadata"]["annotations"]["payguard.dev/pci-dss-requirements"] = "none"
    assert detect_drift(desired, live).changed == ("metadata.annotations[payguard.dev/pci-dss-requirements]",)


def test_labels_removed_altogether_report_every_desired_label() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    del live["metadata"]["labels"]
    assert detect_drift(desired, live).changed == (
        "metadata.labels[app.kubernetes.io/managed-by]",
        "metadata.labels[payguard.dev/payment-service]",
        "metadata.labels[payguard.dev/workload]",
    )


def test_missing_desired_map_key_is_changed() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    del live["spec"]["mtls"]
    drift = detect_drift(desired, live)
    assert drift.changed == ("spec.mtls",)
    assert drift.foreign == ()


def test_changed_selector_label_uses_bracketed_key() -> None:
    desired = desired_peer_authentication()
    desired["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "api"}
    live = live_copy(desired)
    live["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "other"
    assert detect_drift(desired, live).changed == ("spec.selector.matchLabels[app.kubernetes.io/name]",)


def test_missing_owner_reference_is_drift() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    del live["metadata"]["ownerReferences"]
    assert detect_drift(desired, live).changed == ("metadata.ownerReferences",)


def test_non_controller_owner_reference_is_drift() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    live["metadata"]["ownerReferences"][0]["controller"] = False
    assert detect_drift(desired, live).changed == ("metadata.ownerReferences",)


def test_owner_reference_to_another_uid_is_drift() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    live["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    assert detect_drift(desired, live).changed == ("metadata.ownerReferences",)


# --- foreign map keys ------------------------------------------------------------------------------------


def test_foreign_map_key_outside_lists_is_reported_as_foreign_keys() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    live["spec"]["portLevelMtls"] = {"8443": {"mode": "DISABLE"}}
    drift = detect_drift(desired, live)
    assert drift.changed == ()
    assert drift.foreign == (("spec", "portLevelMtls"),)
    assert drift.paths == ("spec.portLevelMtls",)
    assert drift


def test_foreign_key_in_a_nested_map_keeps_every_key_on_its_way() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    live["spec"]["selector"]["matchLabels"]["app.kubernetes.io/version"] = "v2"
    drift = detect_drift(desired, live)
    assert drift.foreign == (("spec", "selector", "matchLabels", "app.kubernetes.io/version"),)
    assert drift.paths == ("spec.selector.matchLabels[app.kubernetes.io/version]",)


def test_paths_merge_changed_and_foreign_sorted_without_duplicates() -> None:
    drift = Drift(changed=("spec.mtls.mode", "spec.a"), foreign=(("spec", "portLevelMtls"), ("spec", "a")))
    assert drift.paths == ("spec.a", "spec.mtls.mode", "spec.portLevelMtls")


# --- lists are atomic ------------------------------------------------------------------------------------


def test_extra_list_element_changes_the_whole_list() -> None:
    desired = desired_authorization_policy()
    live = live_copy(desired)
    live["spec"]["rules"].append({"from": [{"source": {"principals": ["*"]}}]})
    drift = detect_drift(desired, live)
    assert drift.changed == ("spec.rules",)
    assert drift.foreign == ()


def test_removed_list_element_changes_the_whole_list() -> None:
    desired = desired_authorization_policy()
    live = live_copy(desired)
    live["spec"]["rules"] = []
    assert detect_drift(desired, live).changed == ("spec.rules",)


def test_extra_key_inside_a_list_element_is_changed_not_foreign() -> None:
    desired = desired_authorization_policy()
    live = live_copy(desired)
    live["spec"]["rules"][0]["when"] = [{"key": "request.headers[x]", "values": ["y"]}]
    drift = detect_drift(desired, live)
    assert drift.changed == ("spec.rules[0].when",)
    assert drift.foreign == ()


def test_changed_value_deep_in_a_list_is_reported_with_indexes() -> None:
    desired = desired_authorization_policy()
    live = live_copy(desired)
    live["spec"]["rules"][0]["from"][0]["source"]["principals"] = ["*"]
    assert detect_drift(desired, live).changed == ("spec.rules[0].from[0].source.principals[0]",)


def test_extra_key_in_a_map_nested_in_a_list_element_is_changed() -> None:
    desired = desired_authorization_policy()
    live = live_copy(desired)
    live["spec"]["rules"][0]["to"][0]["operation"]["notPaths"] = ["/admin"]
    drift = detect_drift(desired, live)
    assert drift.changed == ("spec.rules[0].to[0].operation.notPaths",)
    assert drift.foreign == ()


def test_value_of_another_type_is_changed() -> None:
    desired = desired_authorization_policy()
    live = live_copy(desired)
    live["spec"]["rules"][0]["to"][0]["operation"]["ports"] = [8443]
    assert detect_drift(desired, live).changed == ("spec.rules[0].to[0].operation.ports[0]",)


def test_missing_spec_is_changed() -> None:
    desired = desired_peer_authentication()
    live = live_copy(desired)
    del live["spec"]
    assert detect_drift(desired, live).changed == ("spec",)


# --- known gaps ------------------------------------------------------------------------------------------


def test_unwanted_dry_run_annotation_on_an_enforced_authorization_policy_is_drift() -> None:
    desired = desired_authorization_policy(dry_run=False)
    live = live_copy(desired_authorization_policy(dry_run=True))
    drift = detect_drift(desired, live)
    assert "metadata.annotations[istio.io/dry-run]" in drift.paths
