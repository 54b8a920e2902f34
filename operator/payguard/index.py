"""Owns the cache's indexes (pure data, no I/O): which objects of a namespace a pass can concern, found
without scanning the namespace, so a pass costs the same beside 10 PaymentServices or beside 200.

An index only narrows: every object it returns is still judged by the same pure decision functions, so it
may return too much, never too little. Keys, per kind:

- policies and Services by their selector's matchLabels (exact, as a frozen set of pairs; a selector
  without plain string labels - empty, expressions only, malformed - is BROAD: it may select anything);
- pods by each of their labels;
- generated kinds by the PaymentService label, CertificateRequests by their Certificate, exceptions by the
  PaymentService they name, PaymentServices by each ServiceAccount their workloads declare.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from itertools import combinations
from typing import Any

from payguard.kinds import (
    AUTHORIZATION_POLICIES,
    CERTIFICATE_NAME_ANNOTATION,
    CERTIFICATE_REQUESTS,
    CHILD_TYPES,
    NETWORK_POLICIES,
    PAYMENT_SERVICE_EXCEPTIONS,
    PAYMENT_SERVICES,
    PEER_AUTHENTICATIONS,
    PODS,
    SERVICE_LABEL,
    SERVICES,
)

Body = Mapping[str, Any]
Key = tuple[Hashable, ...]
BROAD: Key = ("selects", None)
# Past this many labels, subsets are too many to enumerate: the selectors of the namespace are scanned.
MAX_ENUMERATED_LABELS = 8
# Pod labels Kubernetes controllers and Istio's injector add to every pod of a workload, which no workload
# selector needs: not indexed (each costs a set entry per pod); a selector of only these scans the pods.
UNINDEXED_POD_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "security.istio.io/tlsMode",
        "service.istio.io/canonical-name",
        "service.istio.io/canonical-revision",
    }
)
# Kinds indexed by the labels their selector requires, and where the selector sits.
SELECTOR_PATHS = {
    NETWORK_POLICIES.kind: ("spec", "podSelector", "matchLabels"),
    AUTHORIZATION_POLICIES.kind: ("spec", "selector", "matchLabels"),
    PEER_AUTHENTICATIONS.kind: ("spec", "selector", "matchLabels"),
    SERVICES.kind: ("spec", "selector"),
}


def keys_of(kind: str, body: Body) -> set[Key]:
    """The index keys of one object."""
    metadata = _mapping(body.get("metadata"))
    keys: set[Key] = set()
    if kind in SELECTOR_PATHS:
        keys.add(selector_key(kind, body))
    if kind in CHILD_TYPES:
        owner = _mapping(metadata.get("labels")).get(SERVICE_LABEL)
        if isinstance(owner, str):
            keys.add(("owner", owner))
    if kind == PODS.kind:
        pairs = _string_pairs(_mapping(metadata.get("labels")))
        keys.update(("label", k, v) for k, v in pairs if k not in UNINDEXED_POD_LABELS)
    if kind == CERTIFICATE_REQUESTS.kind:
        certificate = _mapping(metadata.get("annotations")).get(CERTIFICATE_NAME_ANNOTATION)
        if isinstance(certificate, str):
            keys.add(("certificate", certificate))
    if kind == PAYMENT_SERVICE_EXCEPTIONS.kind:
        target = _mapping(body.get("spec")).get("paymentService")
        if isinstance(target, str):
            keys.add(("for", target))
    if kind == PAYMENT_SERVICES.kind:
        workloads = _mapping(body.get("spec")).get("workloads")
        for workload in workloads if isinstance(workloads, list) else ():
            account = _mapping(workload).get("serviceAccount")
            if isinstance(account, str):
                keys.add(("account", account))
    return keys


def selector_key(kind: str, body: Body) -> Key:
    """An object's selector as a key: its matchLabels exactly, or BROAD when that cannot be relied on."""
    value: object = body
    for step in SELECTOR_PATHS[kind]:
        value = _mapping(value).get(step)
    labels = _mapping(value)
    pairs = _string_pairs(labels)
    if not pairs or len(pairs) != len(labels):
        return BROAD
    return ("selects", frozenset(pairs))


class NamespaceIndex:
    """Names by (kind, namespace) and key; kept by the cache under its lock, at every change."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], dict[Key, set[str]]] = {}

    def add(self, kind: str, namespace: str, name: str, body: Body) -> None:
        by_key = self._names.setdefault((kind, namespace), {})
        for key in keys_of(kind, body):
            by_key.setdefault(key, set()).add(name)

    def discard(self, kind: str, namespace: str, name: str, body: Body) -> None:
        by_key = self._names.get((kind, namespace), {})
        for key in keys_of(kind, body):
            names = by_key.get(key)
            if names is not None:
                names.discard(name)
                if not names:
                    del by_key[key]

    def clear(self, kind: str, namespace: str | None = None) -> None:
        """Forgets a kind, or one namespace of it (before a fresh list is added)."""
        for scope in [s for s in self._names if s[0] == kind and namespace in (None, s[1])]:
            del self._names[scope]

    def named(self, kind: str, namespace: str, key: Key) -> set[str]:
        return set(self._names.get((kind, namespace), {}).get(key, ()))

    def selecting(self, kind: str, namespace: str, labels: Mapping[str, str]) -> set[str]:
        """Names of objects whose selector may select pods with `labels`: the broad ones, and those whose
        matchLabels are a subset of `labels`."""
        by_key = self._names.get((kind, namespace), {})
        found = set(by_key.get(BROAD, ()))
        for key in _subset_keys(labels, by_key):
            found.update(by_key.get(key, ()))
        return found

    def labelled(self, kind: str, namespace: str, labels: Mapping[str, str]) -> set[str] | None:
        """Names of objects carrying every one of `labels` may be among these (the smallest indexed label's
        set); None when no label of `labels` is indexed, and so every object may qualify."""
        by_key = self._names.get((kind, namespace), {})
        pairs = _string_pairs(labels)
        if len(pairs) != len(labels):
            return set()  # a label value that is no string is carried by no object
        pairs = [(k, v) for k, v in pairs if k not in UNINDEXED_POD_LABELS]
        if not pairs:
            return None
        smallest: set[str] | None = None
        for k, v in pairs:
            names = by_key.get(("label", k, v), set())
            if smallest is None or len(names) < len(smallest):
                smallest = names
        return set(smallest or ())


def _subset_keys(labels: Mapping[str, str], by_key: Mapping[Key, set[str]]) -> Iterator[Key]:
    pairs = _string_pairs(labels)
    if len(pairs) > MAX_ENUMERATED_LABELS:
        present = frozenset(pairs)
        yield from (k for k in by_key if isinstance(k[-1], frozenset) and k[-1] <= present)
        return
    for size in range(1, len(pairs) + 1):
        for subset in combinations(pairs, size):
            yield ("selects", frozenset(subset))


def _string_pairs(labels: Mapping[str, Any]) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in labels.items() if isinstance(k, str) and isinstance(v, str))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
