"""Owns every call payguard makes to the Kubernetes API (but Leases): apply, delete, list, status, Events.

Writes pass the fence, use server-side apply with force under the field manager `payguard`; deletes carry
a UID precondition so payguard only ever removes the exact object it owns."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from payguard.api import ApiError
from payguard.eventseries import EventSeries, new_event
from payguard.fence import Fence
from payguard.kinds import (
    CERTIFICATE_REQUESTS,
    CHILD_TYPES,
    EVENTS,
    FIELD_MANAGER,
    PAYMENT_SERVICES,
    REPORTING_CONTROLLER,
    ResourceType,
)
from payguard.ratelimit import Limiter, NoLimit
from payguard.transport import Transport, api_error, resource_path
from payguard.watchstream import ResourceExpiredError, WatchStream

logger = logging.getLogger(__name__)

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
LIST_TIMEOUT_SECONDS = 60
# Objects per list request (client-go: 500): a start-up parses 14 lists at once, each one page.
LIST_PAGE = 100
Keep = Callable[[str], bool] | None  # which namespaces a list keeps (None: all)
Shape = Callable[[dict[str, Any]], dict[str, Any]] | None  # what a list keeps of each object (None: all)


def load_api_client(kubeconfig: str | None, *, connections: int = 0) -> client.ApiClient:
    """A client for the given kubeconfig, else in-cluster credentials, else $KUBECONFIG / ~/.kube/config.

    `connections`: requests that may be open at once (watches and workers). The pool keeps at most that
    many idle connections instead of the client's 5 per CPU, so it never closes one that a moment later
    costs a new TLS handshake."""
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, connections)
    return client.ApiClient(configuration)


def connect(kubeconfig: str | None) -> Cluster:
    """A Cluster for the command-line tools; a missing or broken kubeconfig is an ApiError, not a trace."""
    try:
        return Cluster(load_api_client(kubeconfig))
    except (config.ConfigException, OSError, ValueError) as error:
        raise ApiError("Load kubeconfig", 0, str(error)) from None


class Cluster:
    """The one door to the API server; implements `api.ClusterApi` for the pass."""

    def __init__(
        self, api_client: client.ApiClient, *, limiter: Limiter | None = None, fence: Fence | None = None
    ) -> None:
        self.api_client = api_client
        self.fence = fence  # None: no leader election, this process writes for every namespace
        self._http = Transport(api_client)
        self._limiter = limiter or NoLimit()
        self._series = EventSeries()
        self._series_lock = threading.Lock()

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply with force, so payguard takes back every field it renders."""
        resource = CHILD_TYPES[manifest["kind"]]
        metadata = manifest["metadata"]
        action = f"Apply {resource.kind} {metadata['namespace']}/{metadata['name']}"
        try:
            self._admit(metadata["namespace"], action)
            live = self._http.request(
                "PATCH",
                resource_path(resource, metadata["namespace"], metadata["name"]),
                query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                body=manifest,
                content_type=APPLY_PATCH,
            )
        except ApiException as error:
            raise api_error(action, error) from None
        return cast(dict[str, Any], live)

    def remove_fields(
        self,
        *,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str,
        fields: tuple[tuple[str, ...], ...],
    ) -> None:
        """Removes fields another manager added, which server-side apply cannot prune (it drops only
        fields its own manager stops sending): a JSON patch guarded by the resourceVersion that was read."""
        resource = CHILD_TYPES[kind]
        operations: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version}
        ]
        operations += [{"op": "remove", "path": _json_pointer(keys)} for keys in fields]
        try:
            self._admit(namespace, f"Remove foreign fields of {kind} {namespace}/{name}")
            self._http.request(
                "PATCH",
                resource_path(resource, namespace, name),
                query=[("fieldManager", FIELD_MANAGER)],
                body=operations,
                content_type=JSON_PATCH,
            )
        except ApiException as error:
            raise api_error(f"Remove foreign fields of {kind} {namespace}/{name}", error) from None

    def json_patch(
        self,
        *,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str,
        operations: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Metadata changes server-side apply cannot express for us (finalizers, detaching an owner),
        applied to exactly the version that was read: a concurrent change fails the test operation."""
        resource = PAYMENT_SERVICES if kind == PAYMENT_SERVICES.kind else CHILD_TYPES[kind]
        guarded = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
            *operations,
        ]
        try:
            self._admit(namespace, f"Patch {kind} {namespace}/{name}")
            live = self._http.request(
                "PATCH",
                resource_path(resource, namespace, name),
                query=[("fieldManager", FIELD_MANAGER)],
                body=guarded,
                content_type=JSON_PATCH,
            )
        except ApiException as error:
            raise api_error(f"Patch {kind} {namespace}/{name}", error) from None
        return cast(dict[str, Any], live)

    def delete(self, *, kind: str, namespace: str, name: str, uid: str) -> None:
        """Deletes exactly the object with this UID; a newer object under the same name is left alone."""
        resource = CHILD_TYPES[kind]
        try:
            self._admit(namespace, f"Delete {kind} {namespace}/{name}")
            self._http.request(
                "DELETE", resource_path(resource, namespace, name), body={"preconditions": {"uid": uid}}
            )
        except ApiException as error:
            if error.status in (404, 409):  # already gone, or replaced by an object we must not touch
                return
            raise api_error(f"Delete {kind} {namespace}/{name}", error) from None

    def read_child(self, *, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Read by a list of one name: payguard is granted list, not get."""
        items, _ = self.list_with_version(CHILD_TYPES[kind], namespace=namespace, name=name)
        return items[0] if items else None

    def read_certificate_requests(self, *, namespace: str) -> list[dict[str, Any]]:
        items, _ = self.list_with_version(CERTIFICATE_REQUESTS, namespace=namespace)
        return items

    def list_with_version(
        self,
        resource: ResourceType,
        *,
        namespace: str | None,
        name: str | None = None,
        keep: Keep = None,
        shape: Shape = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """A full list (apiVersion, kind set) and its resourceVersion, to watch from; `name`: that object only
        (RBAC may grant no more). Read in pages, each kept only in namespaces `keep` accepts and passed
        through `shape` before the next is read, so a fleet is never held whole as the server sent it."""
        items: list[dict[str, Any]] = []
        version = ""
        for page, page_version in self.list_pages(resource, namespace=namespace, name=name):
            version = page_version
            for item in page:
                if keep is None or keep(item["metadata"].get("namespace", "")):
                    items.append(item if shape is None else shape(item))
        return items, version

    def list_pages(
        self, resource: ResourceType, *, namespace: str | None, name: str | None = None
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """The pages of one consistent list (apiVersion, kind set), each with the list's resourceVersion."""
        query = [*_name_selector(name), ("limit", str(LIST_PAGE))]
        while True:
            response = self._get(resource, namespace=namespace, query=query, timeout=LIST_TIMEOUT_SECONDS)
            try:
                listed = self._http.decode(response.data)
            finally:
                response.release_conn()
            metadata = listed.get("metadata") or {}
            head = {"apiVersion": resource.api_version, "kind": resource.kind}
            yield (
                [{**head, **item} for item in listed.get("items") or []],
                str(metadata.get("resourceVersion", "")),
            )
            if not metadata.get("continue"):  # a 410 on a stale token: the informer lists again
                return
            query = [*_name_selector(name), ("limit", str(LIST_PAGE)), ("continue", metadata["continue"])]

    def watch(
        self,
        resource: ResourceType,
        *,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
        name: str | None = None,
    ) -> WatchStream:
        """Watch events from `resource_version` on (with bookmarks) until the server ends the watch;
        `ResourceExpiredError` when that version is too old (compacted): the caller relists."""
        query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
            *_name_selector(name),
        ]
        # The client-side read timeout outlasts the server's, so a dead connection is noticed too.
        response = self._get(
            resource, namespace=namespace, query=query, timeout=timeout_seconds + 30, stream=True
        )
        return WatchStream(response)

    def _get(
        self,
        resource: ResourceType,
        *,
        namespace: str | None,
        query: Sequence[tuple[str, str]],
        timeout: float,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """A list (read whole) or a watch (`stream`, read as it comes); the caller releases the connection."""
        scope = namespace if resource.namespaced else None
        action = f"List {resource.plural}.{resource.group or 'core'}"
        try:
            self._limiter.acquire()
            response = self._http.open(
                "GET", resource_path(resource, scope), query=query, stream=stream, timeout=timeout
            )
        except ApiException as error:
            raise api_error(action, error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ApiError(action, 0, f"API server unreachable: {error}") from None
        if response.status == 410:
            response.release_conn()
            raise ResourceExpiredError(action, 410, "resourceVersion too old")
        if response.status >= 300:
            raise api_error(action, self._http.failure(response))
        return response

    def patch_status(self, *, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        try:
            self._admit(namespace, f"Patch status of {PAYMENT_SERVICES.kind} {namespace}/{name}")
            live = self._http.request(
                "PATCH",
                resource_path(PAYMENT_SERVICES, namespace, name, "status"),
                body={"status": status},
                content_type=MERGE_PATCH,
            )
        except ApiException as error:
            raise api_error(f"Patch status of {PAYMENT_SERVICES.kind} {namespace}/{name}", error) from None
        return cast(dict[str, Any], live)

    def post_event(
        self, *, regarding: Mapping[str, Any], warning: bool, reason: str, action: str, note: str
    ) -> None:
        """An events.k8s.io/v1 Event about the PaymentService; the same Event again within minutes only
        counts up the first one's series. Failing to post one never fails a pass."""
        metadata = regarding["metadata"]
        now = datetime.now(UTC)
        event_type, note = ("Warning" if warning else "Normal"), note[:1024]
        identity = (metadata["namespace"], metadata.get("uid"), event_type, reason, action, note)
        # Named like client-go's recorder does; the API server refuses a generateName ending in ".".
        with self._series_lock:
            occurrence = self._series.occur(
                identity, new_name=f"{metadata['name']}.{time.time_ns():x}", now=now
            )
        event_time = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if self.fence is not None and not self.fence.owns(metadata["namespace"]):
            return  # the fence: a replica that lost the shard tells nothing about it either
        try:
            self._limiter.acquire()
            if occurrence.is_new:
                event = new_event(
                    occurrence,
                    regarding={
                        "apiVersion": PAYMENT_SERVICES.api_version,
                        "kind": PAYMENT_SERVICES.kind,
                        **regarding,
                    },
                    event_type=event_type,
                    reason=reason,
                    action=action,
                    note=note,
                    event_time=event_time,
                    controller=REPORTING_CONTROLLER,
                )
                self._http.request("POST", resource_path(EVENTS, metadata["namespace"]), body=event)
            else:
                self._http.request(
                    "PATCH",
                    resource_path(EVENTS, metadata["namespace"], occurrence.name),
                    body={"series": {"count": occurrence.count, "lastObservedTime": event_time}},
                    content_type=MERGE_PATCH,
                )
        except ApiException as error:
            with self._series_lock:
                self._series.forget(identity)  # the next one starts a new Event
            logger.warning(
                "Failed to post Event %s for %s/%s: %s",
                reason,
                metadata["namespace"],
                metadata["name"],
                error.reason,
            )

    def _admit(self, namespace: str, action: str) -> None:
        """Every write waits for the rate limiter, then passes the fence (or raises FencedError)."""
        self._limiter.acquire()
        if self.fence is not None:
            self.fence.check(namespace, action)

    # --- reads and previews for the command-line tools (diff, explain, evidence) -------------------------

    def preview_apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """What `apply` would leave live, from a server-side dry-run: admission runs, nothing is stored."""
        resource = CHILD_TYPES[manifest["kind"]]
        metadata = manifest["metadata"]
        try:
            self._limiter.acquire()
            # A dry-run creation answers 201, with the would-be object as well.
            preview = self._http.request(
                "PATCH",
                resource_path(resource, metadata["namespace"], metadata["name"]),
                query=[("fieldManager", FIELD_MANAGER), ("force", "true"), ("dryRun", "All")],
                body=manifest,
                content_type=APPLY_PATCH,
            )
        except ApiException as error:
            action = f"Dry-run apply {resource.kind} {metadata['namespace']}/{metadata['name']}"
            raise api_error(action, error) from None
        return cast(dict[str, Any], preview)

    def read(self, resource: ResourceType, *, namespace: str, name: str) -> dict[str, Any] | None:
        """One namespaced object of a group's kind, or None when it does not exist."""
        try:
            self._limiter.acquire()
            found = self._http.request("GET", resource_path(resource, namespace, name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise api_error(f"Get {resource.kind} {namespace}/{name}", error) from None
        body = cast(dict[str, Any], found)
        body.setdefault("apiVersion", resource.api_version)
        body.setdefault("kind", resource.kind)
        return body


def _json_pointer(keys: tuple[str, ...]) -> str:
    return "/" + "/".join(key.replace("~", "~0").replace("/", "~1") for key in keys)


def _name_selector(name: str | None) -> list[tuple[str, str]]:
    return [] if name is None else [("fieldSelector", f"metadata.name={name}")]
