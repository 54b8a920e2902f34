"""`payguard diff`'s pure part: which children would change, in kubectl-diff form."""

from __future__ import annotations

from typing import Any

from payguard.tools.diff import changes_of, comparable


def policy(methods: list[str], *, resource_version: str = "7") -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {
            "name": "checkout-api",
            "namespace": "payments",
            "resourceVersion": resource_version,
            "managedFields": [{"manager": "payguard"}],
        },
        "spec": {"rules": [{"to": [{"operation": {"methods": methods}}]}]},
    }


def test_fields_every_write_moves_are_not_changes() -> None:
    assert changes_of([(policy(["GET"]), policy(["GET"], resource_version="8"))], []) == []
    assert "managedFields" not in (comparable(policy(["GET"])) or {})["metadata"]


def test_an_edited_child_shows_as_a_unified_diff_with_kubectl_style_headers() -> None:
    (change,) = changes_of([(policy(["GET"]), policy(["GET", "POST"]))], [])
    text = change.unified()
    label = "AuthorizationPolicy/payments/checkout-api"
    assert text.startswith(f"--- live/{label}\n+++ merged/{label}\n")
    assert "+        - POST\n" in text
    assert "\n-" not in text  # nothing removed


def test_a_new_child_is_all_additions_and_a_pruned_one_all_removals() -> None:
    (created,) = changes_of([(None, policy(["GET"]))], [])
    (pruned,) = changes_of([], [policy(["GET"])])
    assert all(not line.startswith("-") for line in created.unified().splitlines()[2:])
    assert all(not line.startswith("+") for line in pruned.unified().splitlines()[2:])
