"""An in-memory stand-in for `payguard.api.ClusterApi`, for pure unit tests of a pass only.

It is not an API server: no admission, no schema, no defaulting, no managedFields. Server-side apply is
approximated by a deep merge (maps merge key by key, lists are replaced whole, keys another writer added
stay), which is what a forced apply does to the fields payguard renders; a field payguard stops sending
is not pruned as the real server would. Anything that needs the real semantics belongs in
tests/integration, against a real API server.

What it does do, as an API server would: assigns uid, resourceVersion, generation and creationTimestamp,
refuses a guarded write whose precondition no longer holds, deletes only the object with the given UID,
records every call a pass makes (so a test can count writes and read Events), and queues a watch event
per stored change so `deliver` can feed them into an `ObjectCache`. It can also refuse every apply of a
kind with an `ApiError`, a fault a real server cannot be made to produce on demand.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from payguard.api import ApiError
from payguard.cache import ObjectCache
from payguard.kinds import PAYMENT_SERVICES

ObjectKey = tuple[str, str, str]  # (kind, namespace, name); namespace "" when cluster-scoped
FIXED_CREATION = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Call:
    """One call a pass made: the verb, the object it was about, and what was sent."""

    verb: str  # apply, remove_fields, json_patch, delete, patch_status, post_event
    kind: str
    namespace: str
    name: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WatchEvent:
    """What a watch would deliver for one stored change."""

    type: str  # ADDED, MODIFIED or DELETED
    kind: str
    body: dict[str, Any]


WRITE_VERBS = frozenset({"apply", "remove_fields", "json_patch", "delete", "patch_status"})


class FakeCluster:
    """Satisfies `ClusterApi`; unit tests only (see the module docstring for what it does not do)."""

    def __init__(self, *, now: datetime = FIXED_CREATION) -> None:
        self.objects: dict[ObjectKey, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self._pending: list[WatchEvent] = []
        self._refused: dict[str, tuple[int, str]] = {}  # kind -> (status, message)
        self._now = now
        self._last_version = 0
        self._last_uid = 0

    # --- set-up: what exists before a pass (not recorded as calls) -----------------------------------

    def seed(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Stores an object as if someone created it (kubectl, another controller); returns the live copy."""
        key = _key(body)
        if key in self.objects:
            raise ValueError(f"{key} already exists")
        return self._store(key, self._created(body), event="ADDED")

    def edit(self, kind: str, namespace: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Changes a stored object in place, as `kubectl edit` would; bumps resourceVersion."""
        live = copy.deepcopy(self.objects[(kind, namespace, name)])
        change(live)
        self._store((kind, namespace, name), live, event="MODIFIED")

    def refuse_apply(self, kind: str, *, status: int = 403, message: str = "forbidden") -> None:
        """Every later apply of this kind raises ApiError, as a refused request would."""
        self._refused[kind] = (status, message)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        live = self.objects.get((kind, namespace, name))
        return copy.deepcopy(live) if live is not None else None

    # --- ClusterApi ----------------------------------------------------------------------------------

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        kind, namespace, name = key = _key(manifest)
        self.calls.append(Call("apply", kind, namespace, name, copy.deepcopy(dict(manifest))))
        if kind in self._refused:
            status, message = self._refused[kind]
            raise ApiError(f"Apply {kind} {namespace}/{name}", status, message)
        live = self.objects.get(key)
        if live is None:
            return self._store(key, self._created(manifest), event="ADDED")
        merged = _merge(live, manifest)
        if merged == live:
            return copy.deepcopy(live)  # a no-op apply leaves resourceVersion alone
        if merged.get("spec") != live.get("spec"):
            merged["metadata"]["generation"] = int(live["metadata"].get("generation", 1)) + 1
        return self._store(key, merged, event="MODIFIED")

    def remove_fields(
        self,
        *,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str,
        fields: tuple[tuple[str, ...], ...],
    ) -> None:
        self.calls.append(
            Call(
                "remove_fields",
                kind,
                namespace,
                name,
                {"resourceVersion": resource_version, "fields": fields},
            )
        )
        action = f"Remove foreign fields of {kind} {namespace}/{name}"
        live = self.objects.get((kind, namespace, name))
        if live is None:
            raise ApiError(action, 404, "not found")
        if live["metadata"]["resourceVersion"] != resource_version:
            raise ApiError(action, 422, "the test operation on /metadata/resourceVersion failed")
        changed = copy.deepcopy(live)
        for keys in fields:
            parent: Any = changed
            for step in keys[:-1]:
                parent = parent.get(step) if isinstance(parent, dict) else None
            if not isinstance(parent, dict) or keys[-1] not in parent:
                raise ApiError(action, 422, f"path {'/'.join(keys)} does not exist")
            del parent[keys[-1]]
        self._store((kind, namespace, name), changed, event="MODIFIED")

    def json_patch(
        self,
        *,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str,
        operations: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """RFC 6902 add and remove (what payguard sends), guarded by the resourceVersion like the real one."""
        payload = {"resourceVersion": resource_version, "operations": copy.deepcopy(operations)}
        self.calls.append(Call("json_patch", kind, namespace, name, payload))
        action = f"Patch {kind} {namespace}/{name}"
        live = self.objects.get((kind, namespace, name))
        if live is None:
            raise ApiError(action, 404, "not found")
        if live["metadata"]["resourceVersion"] != resource_version:
            raise ApiError(action, 422, "the test operation on /metadata/resourceVersion failed")
        changed = copy.deepcopy(live)
        for operation in operations:
            *steps, last = [
                step.replace("~1", "/").replace("~0", "~") for step in operation["path"].split("/")[1:]
            ]
            parent: Any = changed
            for step in steps:
                parent = parent[int(step)] if isinstance(parent, list) else parent[step]
            if operation["op"] == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif isinstance(parent, list):
                parent.append(copy.deepcopy(operation["value"]))  # only "-" is ever sent
            else:
                parent[last] = copy.deepcopy(operation["value"])
        return self._store((kind, namespace, name), changed, event="MODIFIED")

    def delete(self, *, kind: str, namespace: str, name: str, uid: str) -> None:
        """Like `cluster.Cluster.delete`: gone already (404) or another UID (409) leaves everything as is."""
        self.calls.append(Call("delete", kind, namespace, name, {"uid": uid}))
        live = self.objects.get((kind, namespace, name))
        if live is None or live["metadata"]["uid"] != uid:
            return
        del self.objects[(kind, namespace, name)]
        self._pending.append(WatchEvent("DELETED", kind, copy.deepcopy(live)))

    def read_child(self, *, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object, with what a test put into its managedFields (the fake tracks no managers)."""
        self.calls.append(Call("read_child", kind, namespace, name, {}))
        return self.get(kind, namespace, name)

    def read_certificate_requests(self, *, namespace: str) -> list[dict[str, Any]]:
        self.calls.append(Call("read_certificate_requests", "CertificateRequest", namespace, "", {}))
        return self.stored("CertificateRequest", namespace)

    def patch_status(self, *, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the status subresource; returns the whole body with the merged status."""
        kind = PAYMENT_SERVICES.kind
        self.calls.append(Call("patch_status", kind, namespace, name, copy.deepcopy(dict(status))))
        live = self.objects.get((kind, namespace, name))
        if live is None:
            raise ApiError(f"Patch status of {kind} {namespace}/{name}", 404, "not found")
        changed = copy.deepcopy(live)
        changed["status"] = _merge_patch(changed.get("status") or {}, status)
        return self._store((kind, namespace, name), changed, event="MODIFIED")

    def post_event(
        self, *, regarding: Mapping[str, Any], warning: bool, reason: str, action: str, note: str
    ) -> None:
        metadata = regarding["metadata"]
        event = {
            "type": "Warning" if warning else "Normal",
            "reason": reason,
            "action": action,
            "note": note,
            "regarding": {"name": metadata["name"], "uid": metadata.get("uid")},
        }
        self.calls.append(Call("post_event", "Event", metadata["namespace"], metadata["name"], event))

    # --- what tests read -----------------------------------------------------------------------------

    def calls_of(self, verb: str) -> list[Call]:
        return [call for call in self.calls if call.verb == verb]

    @property
    def writes(self) -> list[Call]:
        """Every call that changes an object (Events are not counted)."""
        return [call for call in self.calls if call.verb in WRITE_VERBS]

    @property
    def events(self) -> list[Mapping[str, Any]]:
        return [call.payload for call in self.calls_of("post_event")]

    def reset_calls(self) -> None:
        self.calls.clear()

    def stored(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(body)
            for (k, ns, _), body in sorted(self.objects.items())
            if k == kind and (namespace is None or ns == namespace)
        ]

    def deliver(self, cache: ObjectCache, *, held: Collection[str] = ()) -> None:
        """Feeds every stored change since the last delivery into the cache, in order, as the watch would;
        changes of `held` kinds stay pending, as behind a watch that lags."""
        for event in self._pending:
            metadata = event.body["metadata"]
            if event.kind in held:
                continue
            if event.type == "DELETED":
                cache.remove(event.kind, namespace=metadata.get("namespace", ""), name=metadata["name"])
            else:
                cache.put(event.kind, copy.deepcopy(event.body))
        self._pending = [event for event in self._pending if event.kind in held]

    # --- internals -----------------------------------------------------------------------------------

    def _created(self, body: Mapping[str, Any]) -> dict[str, Any]:
        created = copy.deepcopy(dict(body))
        metadata = created.setdefault("metadata", {})
        self._last_uid += 1
        metadata.setdefault("uid", str(uuid.UUID(int=self._last_uid)))
        metadata.setdefault("generation", 1)
        metadata.setdefault("creationTimestamp", self._now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return created

    def _store(self, key: ObjectKey, body: dict[str, Any], *, event: str) -> dict[str, Any]:
        self._last_version += 1
        body["metadata"]["resourceVersion"] = str(self._last_version)
        self.objects[key] = body
        self._pending.append(WatchEvent(event, key[0], copy.deepcopy(body)))
        return copy.deepcopy(body)


def _key(body: Mapping[str, Any]) -> ObjectKey:
    metadata = body["metadata"]
    return (str(body["kind"]), str(metadata.get("namespace", "")), str(metadata["name"]))


def _merge(live: Mapping[str, Any], applied: Mapping[str, Any]) -> dict[str, Any]:
    """A forced server-side apply, roughly: applied values win, maps merge, lists are atomic."""
    merged = copy.deepcopy(dict(live))
    for key, value in applied.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: maps merge, null removes, anything else replaces."""
    merged = copy.deepcopy(dict(target))
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
