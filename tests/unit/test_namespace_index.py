"""The namespace index returns every policy whose selector selects a pod's labels (a superset at worst),
on the enumerated path and on the scanned one for pods with many labels."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from payguard.index import BROAD, MAX_ENUMERATED_LABELS, NamespaceIndex, selector_key
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
