"""Owns the watch-fed, in-memory copies of the objects payguard reads, so a pass reads without API calls,
and what payguard cannot observe at the moment."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from payguard.index import Key, NamespaceIndex
from payguard.slim import slim

T = TypeVar("T")
Bodies = list[dict[str, Any]]  # spelt once: the class's own `list` method shadows the builtin in it
# Parsed bodies kept at most; a lost entry is only parsed again.
PARSED_LIMIT = 4096


class ObjectCache:
    """Latest known body per kind, namespace and name, fed by watch events (and one list at start-up).

    Indexed by namespace, because a pass reads one namespace (plus the mesh root) and must not cost more
    as the fleet grows. Watch events arrive on the event loop while passes read from worker threads,
    hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}  # kind -> namespace -> name
        self._parsed: dict[tuple[str, str], Any] = {}  # (uid, resourceVersion) -> parse(body)
        self._unavailable: dict[str, str] = {}  # kind -> why it cannot be observed
        self._keep: Callable[[str], bool] | None = None  # which namespaces are kept (None: all)
        # Kept at every change, so a pass finds what concerns it without scanning its namespace.
        self._index = NamespaceIndex()

    def keep_only(self, keep: Callable[[str], bool] | None) -> int:
        """From now on keeps only the objects of namespaces `keep` accepts ("" for cluster-scoped ones),
        whatever lists and events bring; drops those held that it does not accept, and returns how many.
        Sharded replicas keep their own shards' namespaces (see `sharding.keeps_namespace`)."""
        dropped = 0
        with self._lock:
            self._keep = keep
            for kind, by_namespace in self._objects.items():
                for namespace in [ns for ns in by_namespace if not self._keeps(ns)]:
                    dropped += len(by_namespace.pop(namespace))
                    self._index.clear(kind, namespace)
            if dropped:
                self._parsed.clear()  # parsed neighbours of the dropped namespaces
        return dropped

    def keeps(self, namespace: str) -> bool:
        """Whether objects of `namespace` are kept (cluster-scoped objects: namespace "")."""
        with self._lock:
            return self._keeps(namespace)

    def _keeps(self, namespace: str) -> bool:
        return self._keep is None or self._keep(namespace)

    def put(self, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Keeps what a pass reads of `body` (see `slim`), and returns it (not kept: of a namespace
        another replica's shard owns)."""
        kept = slim(kind, body)
        with self._lock:
            self._keep_locked(kind, kept)
        return kept

    def advance(self, kind: str, body: Mapping[str, Any], *, from_version: str) -> None:
        """Keeps an object payguard just wrote, unless the watch brought a newer one (or its deletion)
        meanwhile: the next pass must judge from what this pass wrote, not from a copy the watch has not
        replaced yet."""
        kept = slim(kind, body)
        metadata = kept["metadata"]
        with self._lock:  # checked and kept at once: a watch event in between would be overwritten
            known = self._objects.get(kind, {}).get(metadata.get("namespace", ""), {}).get(metadata["name"])
            if known is not None and known["metadata"].get("resourceVersion") == from_version:
                self._keep_locked(kind, kept)

    def _keep_locked(self, kind: str, kept: dict[str, Any]) -> None:
        metadata = kept["metadata"]
        namespace, name = metadata.get("namespace", ""), metadata["name"]
        if not self._keeps(namespace):
            return
        names = self._objects.setdefault(kind, {}).setdefault(namespace, {})
        old = names.get(name)
        if old is not None:
            self._index.discard(kind, namespace, name, old)
        names[name] = kept
        self._index.add(kind, namespace, name, kept)

    def remove(self, kind: str, *, namespace: str, name: str) -> None:
        with self._lock:
            old = self._objects.get(kind, {}).get(namespace, {}).pop(name, None)
            if old is not None:
                self._index.discard(kind, namespace, name, old)

    def replace(
        self, kind: str, kept: Iterable[dict[str, Any]], *, namespace: str | None = None
    ) -> list[Change]:
        """Replaces what is known of a kind (or of one namespace of it) by a fresh list, already slimmed
        (see `slim`: the informer slims each page as it comes), and returns every difference: added,
        changed (by resourceVersion) and vanished objects, the last with no DELETED event to tell of them."""
        fresh: dict[str, dict[str, dict[str, Any]]] = {}
        with self._lock:
            keep = self._keep
        for body in kept:
            metadata = body["metadata"]
            if keep is None or keep(metadata.get("namespace", "")):
                fresh.setdefault(metadata.get("namespace", ""), {})[metadata["name"]] = body
        with self._lock:
            by_namespace = self._objects.setdefault(kind, {})
            scope = list(by_namespace) if namespace is None else [namespace]
            old = {(ns, name): body for ns in scope for name, body in by_namespace.get(ns, {}).items()}
            if namespace is None:
                self._objects[kind] = fresh
            else:
                by_namespace[namespace] = fresh.get(namespace, {})
            self._index.clear(kind, namespace)
            for ns in fresh if namespace is None else [namespace]:
                for name, body in fresh.get(ns, {}).items():
                    self._index.add(kind, ns, name, body)
        new = {(ns, name): body for ns, names in fresh.items() for name, body in names.items()}
        return [
            Change(old.get(key), new.get(key))
            for key in sorted(old.keys() | new.keys())
            if _version(old.get(key)) != _version(new.get(key))
        ]

    def set_unavailable(self, kind: str, reason: str | None) -> None:
        """Records why a kind cannot be observed (its CRD is not served, RBAC refuses), or that it can."""
        with self._lock:
            if reason is None:
                self._unavailable.pop(kind, None)
            else:
                self._unavailable[kind] = reason

    def unavailable(self) -> dict[str, str]:
        """Kinds that cannot be observed now, with why: what a pass must not judge as holding."""
        with self._lock:
            return dict(self._unavailable)

    def get(self, kind: str, *, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get(kind, {}).get(namespace, {}).get(name)

    def list(self, kind: str, *, namespaces: Iterable[str] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            by_namespace = self._objects.get(kind, {})
            chosen = by_namespace.keys() if namespaces is None else dict.fromkeys(namespaces)
            return [body for ns in chosen for body in by_namespace.get(ns, {}).values()]

    def keyed(self, kind: str, *, namespace: str, key: Key) -> Bodies:
        """The objects of a namespace under one index key (see `index.keys_of`)."""
        with self._lock:
            return self._bodies(kind, namespace, self._index.named(kind, namespace, key))

    def selecting(self, kind: str, *, namespace: str, labels: Mapping[str, str]) -> Bodies:
        """The policies (or Services) of a namespace whose selector may select pods with `labels`: a
        superset of those that do, never missing one."""
        with self._lock:
            return self._bodies(kind, namespace, self._index.selecting(kind, namespace, labels))

    def labelled(self, kind: str, *, namespace: str, labels: Mapping[str, str]) -> Bodies:
        """The pods of a namespace that may carry every one of `labels` (a superset, never missing one)."""
        with self._lock:
            names = self._index.labelled(kind, namespace, labels)
            if names is None:
                return list(self._objects.get(kind, {}).get(namespace, {}).values())
            return self._bodies(kind, namespace, names)

    def _bodies(self, kind: str, namespace: str, names: Iterable[str]) -> Bodies:
        known = self._objects.get(kind, {}).get(namespace, {})
        return [known[name] for name in sorted(names) if name in known]

    def parsed(self, body: Mapping[str, Any], parse: Callable[[Mapping[str, Any]], T]) -> T:
        """`parse(body)`, remembered per (uid, resourceVersion): a pass parses its own PaymentService and
        the neighbours that share its identities, and most passes find them unchanged."""
        key = (str(body["metadata"].get("uid")), str(body["metadata"].get("resourceVersion")))
        with self._lock:
            if key in self._parsed:
                known: T = self._parsed[key]
                return known
        value = parse(body)
        with self._lock:
            if len(self._parsed) >= PARSED_LIMIT:
                self._parsed.clear()
            self._parsed[key] = value
        return value

    def versions(self, kind: str, *, namespace: str | None) -> dict[tuple[str, str], str]:
        """The resourceVersion of every object held of a kind (in one namespace, or in all), by
        (namespace, name): what the resync's check compares with a list."""
        with self._lock:
            by_namespace = self._objects.get(kind, {})
            chosen = by_namespace.keys() if namespace is None else [namespace]
            return {
                (ns, name): str(body["metadata"].get("resourceVersion"))
                for ns in chosen
                for name, body in by_namespace.get(ns, {}).items()
            }

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(len(names) for names in self._objects.get(kind, {}).values())


@dataclass(frozen=True)
class Change:
    """One object a fresh list found different: `old` None when added, `new` None when it vanished."""

    old: dict[str, Any] | None
    new: dict[str, Any] | None

    @property
    def body(self) -> dict[str, Any]:
        body = self.new or self.old
        assert body is not None
        return body


def _version(body: Mapping[str, Any] | None) -> str | None:
    return None if body is None else str(body["metadata"].get("resourceVersion"))
