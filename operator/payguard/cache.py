"""Owns the watch-fed, in-memory copies of the objects payguard reads, so a pass reads without API calls."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

ObjectKey = tuple[str, str]  # (namespace, name)


class ObjectCache:
    """Latest known body per kind and object, fed by watch events (and one list at start-up).

    Watch events arrive on the event loop while passes read from worker threads, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[ObjectKey, dict[str, Any]]] = {}

    def put(self, kind: str, body: Mapping[str, Any]) -> None:
        metadata = body["metadata"]
        with self._lock:
            self._objects.setdefault(kind, {})[(metadata.get("namespace", ""), metadata["name"])] = dict(body)

    def remove(self, kind: str, *, namespace: str, name: str) -> None:
        with self._lock:
            self._objects.get(kind, {}).pop((namespace, name), None)

    def replace_all(self, kind: str, bodies: Iterable[Mapping[str, Any]]) -> None:
        fresh = {(b["metadata"].get("namespace", ""), b["metadata"]["name"]): dict(b) for b in bodies}
        with self._lock:
            self._objects[kind] = fresh

    def get(self, kind: str, *, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get(kind, {}).get((namespace, name))

    def list(self, kind: str, *, namespaces: Iterable[str] | None = None) -> list[dict[str, Any]]:
        wanted = None if namespaces is None else set(namespaces)
        with self._lock:
            return [
                body
                for (ns, _), body in self._objects.get(kind, {}).items()
                if wanted is None or ns in wanted
            ]

    def count(self, kind: str) -> int:
        with self._lock:
            return len(self._objects.get(kind, {}))
