"""Owns keeping one kind's cache true, like client-go's reflector: list, watch from the list's
resourceVersion, and list again after any gap (a broken watch, a 410 Gone, an API server restart), so
objects that vanished meanwhile are noticed even though no DELETED event ever tells of them. The periodic
resync checks the cache against a list read while the watch goes on, and relists only on a miss: a
relist stops the watch, and a change made meanwhile would be seen only when the list ends."""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from payguard import consistency, metrics
from payguard.api import ApiError
from payguard.cluster import Cluster
from payguard.kinds import ResourceType, crd_name
from payguard.slim import slim
from payguard.watchstream import ResourceExpiredError, WatchStream

logger = logging.getLogger(__name__)
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 2.0  # an API server that comes back is relisted within this
WATCH_SECONDS = (240, 300)  # the server ends each watch after a random time in this range
CATCH_UP_SECONDS = 2.0  # how long a resync's check lets the watch deliver what the list already shows


@dataclass(frozen=True)
class Listener:
    """What an informer reports, called from its thread. `listed` and `unavailable` carry the number of
    the list attempt (see `Informer.lists_begun`)."""

    listed: Callable[[ResourceType, str | None, list[dict[str, Any]], int], object]  # bodies slimmed
    event: Callable[[ResourceType, Mapping[str, Any]], object]
    unavailable: Callable[[ResourceType, str | None, str, int], object]


class Informer:
    """One kind, in one namespace or all of them, kept by one daemon thread."""

    def __init__(
        self,
        cluster: Cluster,
        resource: ResourceType,
        *,
        namespace: str | None,
        listener: Listener,
        name: str | None = None,
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.name = name  # only the object of this name (the mesh config)
        self.keep = keep  # namespaces whose objects a list keeps (a sharded replica's), read per page
        # List attempts begun: a list numbered above a count read after a shard was taken began after
        # it, so none of its pages dropped that shard's objects.
        self.lists_begun = 0
        self._cluster = cluster
        self._listener = listener
        self._stopped = threading.Event()
        self._stream: WatchStream | None = None
        self._relist = False
        self._watching = False  # listed, and following its watch: what a resync's check compares with
        self._touched: set[consistency.Key] | None = None  # keys watch events brought during a check
        self._touched_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.scope}", daemon=True)

    @property
    def scope(self) -> str:
        kind = f"{self.resource.plural}.{self.resource.group or 'core'}"
        named = f" {self.name}" if self.name else ""
        return kind + named + (f" in {self.namespace}" if self.namespace else "")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._stream is not None:
            self._stream.close()

    def relist(self) -> None:
        """Ends the current watch, so the thread lists afresh: the periodic check that the cache is true,
        and filling a shard just acquired. Once only while a relist is pending: a list follows anyway."""
        if self._relist:
            return
        self._relist = True
        if self._stream is not None:
            self._stream.close()

    def _run(self) -> None:
        delay = FIRST_RETRY_SECONDS
        last_problem = ""
        while not self._stopped.is_set():
            self.lists_begun += 1
            attempt = self.lists_begun
            try:
                items, version = self._cluster.list_with_version(
                    self.resource,
                    namespace=self.namespace,
                    name=self.name,
                    keep=self.keep,
                    shape=functools.partial(slim, self.resource.kind),  # page by page: never whole
                )
            except ApiError as error:
                problem = self._describe(error)
                if problem != last_problem:  # one line per new problem, not one per retry
                    logger.warning("Cannot list %s: %s; retrying", self.scope, problem)
                    last_problem = problem
                if error.status in (403, 404):
                    self._listener.unavailable(self.resource, self.namespace, problem, attempt)
                self._stopped.wait(delay)
                delay = min(MAX_RETRY_SECONDS, delay * 2)
                continue
            metrics.CACHE_LISTS.labels(kind=self.resource.kind).inc()
            if last_problem:
                logger.info("Listed %s again after: %s", self.scope, last_problem)
            last_problem, delay = "", FIRST_RETRY_SECONDS
            self._listener.listed(self.resource, self.namespace, items, attempt)
            try:
                self._watching = True
                self._watch(version)
            except ResourceExpiredError:
                logger.info("Relisting %s: its watch resumed past compaction (410 Gone)", self.scope)
            except ApiError as error:
                if self._relist:
                    logger.debug("Relisting %s as asked (a resync check's miss, a shard's fill)", self.scope)
                elif not self._stopped.is_set():
                    logger.info("Relisting %s: %s", self.scope, error)
                    self._stopped.wait(FIRST_RETRY_SECONDS)
            finally:
                self._watching = False
            self._relist = False

    def _watch(self, version: str) -> None:
        """Follows the watch, from one server-side timeout to the next, until it breaks or a relist is due."""
        while not self._stopped.is_set() and not self._relist:
            self._stream = self._cluster.watch(
                self.resource,
                namespace=self.namespace,
                resource_version=version,
                timeout_seconds=random.randint(*WATCH_SECONDS),
                name=self.name,
            )
            if self._stopped.is_set() or self._relist:  # stop() or relist() ran before the stream existed
                self._stream.close()
                return
            for event in self._stream:
                kind, body = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    code = int(body.get("code") or 0)
                    error = ResourceExpiredError if code == 410 else ApiError
                    raise error(f"Watch {self.scope}", code, str(body.get("message", "")))
                version = str(body.get("metadata", {}).get("resourceVersion") or version)
                if kind != "BOOKMARK" and self._kept(body):  # another replica's shard: dropped here
                    self._touch(body)
                    self._listener.event(self.resource, event)

    def check(
        self,
        *,
        cached: Callable[[], consistency.Versions],
        admits: Callable[[Mapping[str, Any]], bool],
    ) -> str:
        """The resync's check that the cache is true, from a worker thread: lists the kind page by page
        while the watch goes on and compares resourceVersions with `cached()` (what the cache holds of
        the objects `admits` lets in); a miss relists. Returns the outcome: consistent, missed, failed, or
        skipped (not watching: the kind is being listed, or is not served, and the informer retries)."""
        outcome = self._check(cached=cached, admits=admits) if self._watching else "skipped"
        metrics.CACHE_AUDITS.labels(kind=self.resource.kind, outcome=outcome).inc()
        return outcome

    def _check(
        self,
        *,
        cached: Callable[[], consistency.Versions],
        admits: Callable[[Mapping[str, Any]], bool],
    ) -> str:
        with self._touched_lock:
            self._touched = set()
        try:
            listed = self._listed_versions(admits)
            missed = consistency.missed(listed=listed, cached=cached(), touched=self._touched_keys())
            if missed:  # the watch may not have delivered yet what the list already shows
                self._stopped.wait(CATCH_UP_SECONDS)
                now = {key: version for key, version in cached().items() if key in missed}
                listed = {key: version for key, version in listed.items() if key in missed}
                missed = consistency.missed(listed=listed, cached=now, touched=self._touched_keys())
        except ApiError as error:
            logger.info("Relisting %s: its resync check failed: %s", self.scope, error)
            self.relist()
            return "failed"
        finally:
            with self._touched_lock:
                self._touched = None
        if not missed:
            return "consistent"
        named = ", ".join("/".join(part for part in key if part) for key in missed[:5])
        logger.warning("Relisting %s: the watch missed %d objects (%s)", self.scope, len(missed), named)
        self.relist()
        return "missed"

    def _listed_versions(self, admits: Callable[[Mapping[str, Any]], bool]) -> dict[consistency.Key, str]:
        versions: dict[consistency.Key, str] = {}
        pages = self._cluster.list_pages(self.resource, namespace=self.namespace, name=self.name)
        for page, _version in pages:
            for item in page:
                if self._kept(item) and admits(item):
                    versions[_key(item)] = str(item["metadata"].get("resourceVersion"))
        return versions

    def _touch(self, body: Mapping[str, Any]) -> None:
        with self._touched_lock:
            if self._touched is not None:
                self._touched.add(_key(body))

    def _touched_keys(self) -> set[consistency.Key]:
        with self._touched_lock:
            return set(self._touched or ())

    def _kept(self, body: Mapping[str, Any]) -> bool:
        return self.keep is None or self.keep(str(body.get("metadata", {}).get("namespace") or ""))

    def _describe(self, error: ApiError) -> str:
        if error.status == 404 and self.resource.group:
            return f"CustomResourceDefinition {crd_name(self.resource)} is not served"
        if error.status == 403:
            return f"RBAC does not let payguard list {self.scope}"
        return str(error)


def _key(body: Mapping[str, Any]) -> consistency.Key:
    metadata = body.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
