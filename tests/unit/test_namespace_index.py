"""The namespace index returns every policy whose selector selects a pod's labels (a superset at worst),
on the enumerated path and on the scanned one for pods with many labels."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from payguard.index import BROAD, MAX_ENUMERATED_LABELS, UNINDEXED_POD_LABELS, NamespaceIndex, selector_key
from payguard.posture.objects import selector_matches

NS = "payments"


SELECTORS: list[Callable[[random.Random], Any]] = [
    lambda r: {},
    lambda r: {"matchLabels": {f"k{r.randrange(4)}": f"v{r.randrange(3)}" for _ in range(r.randrange(1, 4))}},
    lambda r: {
        "matchExpressions": [
            {
                "key": f"k{r.randrange(4)}",
                "operator": r.choice(["In", "NotIn", "Exists", "DoesNotExist"]),
                "values": [f"v{r.randrange(3)}"],
            }
        ]
    },
    lambda r: {"matchLabels": {f"k{r.randrange(4)}": r.choice(["v0", 0, None])}},
]


@pytest.mark.parametrize("label_count", [0, 1, 3, MAX_ENUMERATED_LABELS, MAX_ENUMERATED_LABELS + 3])
def test_selecting_never_misses_a_policy_that_selects(label_count: int) -> None:
    """Random selectors against random labels (fixed seed): every selecting policy is returned, on both the
    enumerated and the scanned path."""
    rng = random.Random(label_count)
    index, policies = NamespaceIndex(), {}
    for number in range(300):
        selector = rng.choice(SELECTORS)(rng)
        body = {"metadata": {"name": f"p{number}"}, "spec": {"podSelector": selector}}
        policies[f"p{number}"] = selector
        index.add("NetworkPolicy", NS, f"p{number}", body)
    for _ in range(50):
        labels = {
            f"k{i}": f"v{rng.randrange(3)}" for i in rng.sample(range(max(4, label_count)), label_count)
        }
        found = index.selecting("NetworkPolicy", NS, labels)
        selecting = {name for name, selector in policies.items() if selector_matches(selector, labels)}
        assert selecting <= found


@pytest.mark.parametrize(
    ("selector", "broad"),
    [
        ({}, True),
        (None, True),
        ({"matchLabels": {}}, True),
        ({"matchLabels": ["a"]}, True),
        ({"matchLabels": {"a": 1}}, True),
        ({"matchLabels": {"a": "1", "b": 2}}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, True),
        ({"matchLabels": {"a": "1"}}, False),
        ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, False),
    ],
)
def test_a_selector_not_made_of_plain_labels_is_broad(selector: Any, broad: bool) -> None:
    body = {"spec": {"podSelector": selector}}
    assert (selector_key("NetworkPolicy", body) == BROAD) is broad


def test_a_changed_object_leaves_its_old_keys() -> None:
    index = NamespaceIndex()
    old = {"metadata": {"name": "p"}, "spec": {"podSelector": {"matchLabels": {"a": "1"}}}}
    new = {"metadata": {"name": "p"}, "spec": {"podSelector": {"matchLabels": {"a": "2"}}}}
    index.add("NetworkPolicy", NS, "p", old)
    index.discard("NetworkPolicy", NS, "p", old)
    index.add("NetworkPolicy", NS, "p", new)
    assert index.selecting("NetworkPolicy", NS, {"a": "1"}) == set()
    assert index.selecting("NetworkPolicy", NS, {"a": "2"}) == {"p"}


def test_pods_are_found_by_their_rarest_indexed_label_or_all_scanned() -> None:
    index = NamespaceIndex()
    for name, labels in (
        ("gw-0", {"app": "gw", "tier": "edge", "pod-template-hash": "a"}),
        ("gw-1", {"app": "gw", "tier": "edge", "pod-template-hash": "b"}),
        ("db-0", {"app": "db", "tier": "edge", "pod-template-hash": "a"}),
    ):
        index.add("Pod", NS, name, {"metadata": {"name": name, "labels": labels}})
    assert index.labelled("Pod", NS, {"app": "gw", "tier": "edge"}) == {"gw-0", "gw-1"}
    assert index.labelled("Pod", NS, {"app": "nothing"}) == set()
    assert index.labelled("Pod", NS, {"app": 1}) == set()  # type: ignore[dict-item]
    # Only unindexed labels, or none: every pod may carry them, so the caller scans them all.
    assert "pod-template-hash" in UNINDEXED_POD_LABELS
    assert index.labelled("Pod", NS, {"pod-template-hash": "a"}) is None
    assert index.labelled("Pod", NS, {}) is None
    assert index.labelled("Pod", NS, {"app": "gw", "pod-template-hash": "a"}) == {"gw-0", "gw-1"}
