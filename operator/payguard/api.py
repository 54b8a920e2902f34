"""Owns the contract between a reconcile pass and the API server: the calls a pass may make and the error
they raise, so a pass runs against the real `cluster.Cluster` or a fake with the same shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class ApiError(Exception):
    """A refused API call, carrying the server's own message for status and Events (never a body)."""

    def __init__(self, action: str, status: int, message: str) -> None:
        super().__init__(f"{action} failed ({status}): {message}")
        self.status = status


class ClusterApi(Protocol):
    """The writes a pass makes; reads come from the watch-fed cache, except to confirm drift the cache
    suggests (a child missing from it, who drifted an object)."""

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply with force under payguard's field manager; returns the live object."""
        ...

    def remove_fields(
        self,
        *,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str,
        fields: tuple[tuple[str, ...], ...],
    ) -> None:
        """Removes fields another manager added, guarded by the resourceVersion that was read."""
        ...

    def json_patch(
        self,
        *,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str,
        operations: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """A JSON patch of a generated object or a PaymentService (its metadata), guarded by the
        resourceVersion that was read; returns the live object."""
        ...

    def delete(self, *, kind: str, namespace: str, name: str, uid: str) -> None:
        """Deletes exactly the object with this UID."""
        ...

    def read_child(self, *, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A generated object as the API server holds it now, managedFields included (the cache drops
        them); None when it does not exist. Read only to confirm drift, never to find it."""
        ...

    def read_certificate_requests(self, *, namespace: str) -> list[dict[str, Any]]:
        """The CertificateRequests of a namespace as the API server holds them now: read only when the
        cache's copies lag behind a Certificate's status."""
        ...

    def patch_status(self, *, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """Merges `status` into a PaymentService's status subresource."""
        ...

    def post_event(
        self, *, regarding: Mapping[str, Any], warning: bool, reason: str, action: str, note: str
    ) -> None:
        """Posts an Event about a PaymentService; never raises."""
        ...


class FencedError(ApiError):
    """A write refused before it was sent: this replica does not hold (or could not renew in time) the
    Lease of the object's shard. Another replica may own it; this one must not write."""

    def __init__(self, action: str, why: str) -> None:
        super().__init__(action, 0, f"refused by the fence: {why}")
        self.why = why
