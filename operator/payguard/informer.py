"""Owns keeping one kind's cache true, like client-go's reflector: list, watch from the list's
resourceVersion, and list again after any gap (a broken watch, a 410 Gone, an API server restart), so
objects that vanished meanwhile are noticed even though no DELETED event ever tells of them."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from payguard import metrics
from payguard.api import ApiError
from payguard.cluster import Cluster
from payguard.kinds import ResourceType, crd_name
from payguard.watchstream import ResourceExpiredError, WatchStream

logger = logging.getLogger(__name__)
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 2.0  # an API server that comes back is relisted within this
WATCH_SECONDS = (240, 300)  # the server ends each watch after a random time in this range


@dataclass(frozen=True)
class Listener:
    """What an informer reports, called from its thread. `listed` and `unavailable` carry the number of
    the list attempt (see `Informer.lists_begun`)."""

    listed: Callable[[ResourceType, str | None, list[dict[str, Any]], int], object]
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
                    self.resource, namespace=self.namespace, name=self.name, keep=self.keep
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
                self._watch(version)
            except ResourceExpiredError:
                logger.info("Relisting %s: its watch resumed past compaction (410 Gone)", self.scope)
            except ApiError as error:
                if self._relist:
                    logger.debug("Relisting %s for the resync", self.scope)
                elif not self._stopped.is_set():
                    logger.info("Relisting %s: %s", self.scope, error)
                    self._stopped.wait(FIRST_RETRY_SECONDS)
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
                    self._listener.event(self.resource, event)

    def _kept(self, body: Mapping[str, Any]) -> bool:
        return self.keep is None or self.keep(str(body.get("metadata", {}).get("namespace") or ""))

    def _describe(self, error: ApiError) -> str:
        if error.status == 404 and self.resource.group:
            return f"CustomResourceDefinition {crd_name(self.resource)} is not served"
        if error.status == 403:
            return f"RBAC does not let payguard list {self.scope}"
        return str(error)
