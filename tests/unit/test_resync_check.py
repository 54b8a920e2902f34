"""Lists are read in pages and slimmed page by page; the resync checks the cache against a list read while
the watch goes on, and relists (stopping the watch) only when the watch missed an object."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from payguard import cluster as cluster_module
from payguard import informer as informer_module
from payguard.api import ApiError
from payguard.cache import ObjectCache
from payguard.cluster import Cluster
from payguard.consistency import missed
from payguard.informer import Informer, Listener
from payguard.kinds import NETWORK_POLICIES, PODS, ResourceType
from payguard.slim import slim

# --- the judgement (pure) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listed", "cached", "touched", "expected"),
    [
        ({("a", "x"): "1"}, {("a", "x"): "1"}, set(), []),
        ({("a", "x"): "2"}, {("a", "x"): "1"}, set(), [("a", "x")]),  # a MODIFIED never delivered
        ({}, {("a", "x"): "1"}, set(), [("a", "x")]),  # a DELETED never delivered
        ({("a", "x"): "1"}, {}, set(), [("a", "x")]),  # an ADDED never delivered
        ({("a", "x"): "2"}, {("a", "x"): "3"}, {("a", "x")}, []),  # the watch moved it during the list
        ({}, {("a", "x"): "3"}, {("a", "x")}, []),  # created during the list, after its page was read
        ({("a", "x"): "1", ("b", "y"): "1"}, {("a", "x"): "1", ("b", "y"): "0"}, set(), [("b", "y")]),
    ],
)
def test_only_an_untouched_object_that_differs_is_a_miss(
    listed: dict[Any, str], cached: dict[Any, str], touched: set[Any], expected: list[Any]
) -> None:
    assert missed(listed=listed, cached=cached, touched=touched) == expected


# --- the paged list ------------------------------------------------------------------------------------


class PagedServer:
    """Answers list requests in pages, as the API server does with `limit` and `continue`."""

    def __init__(self, namespaces: list[str], *, log: list[str] | None = None) -> None:
        self.items = [
            {
                "metadata": {
                    "namespace": ns,
                    "name": f"np{i}",
                    "resourceVersion": str(i + 1),
                    "managedFields": [],
                }
            }
            for i, ns in enumerate(namespaces)
        ]
        self.queries: list[dict[str, str]] = []
        self.log = log if log is not None else []
        self.failure: int | None = None

    def get(self, resource: ResourceType, *, namespace: str | None, query: Any, timeout: float) -> Any:
        if self.failure is not None:
            raise ApiError(f"List {resource.plural}", self.failure, "refused")
        asked = dict(query)
        self.queries.append(asked)
        self.log.append(f"page {asked.get('continue', '0')}")
        start, limit = int(asked.get("continue", "0")), int(asked["limit"])
        end = start + limit
        more = {"continue": str(end)} if end < len(self.items) else {}
        data = {"items": self.items[start:end], "metadata": {"resourceVersion": "42", **more}}
        # The shape of a urllib3 response, as the transport's `open` returns it.
        return type("R", (), {"data": json.dumps(data).encode(), "release_conn": lambda self: None})()


@pytest.fixture
def paged(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Cluster, PagedServer]]:
    monkeypatch.setattr(cluster_module, "LIST_PAGE", 2)
    log: list[str] = []
    server = PagedServer(["a", "b", "a", "c", "a"], log=log)
    cluster = Cluster(client.ApiClient())
    monkeypatch.setattr(cluster, "_get", server.get)
    yield cluster, server


def test_every_list_is_read_in_pages_and_keeps_only_accepted_namespaces(
    paged: tuple[Cluster, PagedServer],
) -> None:
    cluster, server = paged
    items, version = cluster.list_with_version(NETWORK_POLICIES, namespace=None, keep=lambda ns: ns == "a")
    assert [item["metadata"]["name"] for item in items] == ["np0", "np2", "np4"]
    assert {item["kind"] for item in items} == {"NetworkPolicy"}
    assert version == "42"
    assert [q.get("continue") for q in server.queries] == [None, "2", "4"]
    # Unsharded (no filter): paged all the same, so no list is ever decoded whole.
    everything, _ = cluster.list_with_version(NETWORK_POLICIES, namespace=None)
    assert len(everything) == 5
    assert [q.get("continue") for q in server.queries[3:]] == [None, "2", "4"]


def test_each_page_is_shaped_before_the_next_is_read(paged: tuple[Cluster, PagedServer]) -> None:
    cluster, server = paged

    def shape(item: dict[str, Any]) -> dict[str, Any]:
        server.log.append(f"shape {item['metadata']['name']}")
        return slim(item["kind"], item)

    items, _ = cluster.list_with_version(NETWORK_POLICIES, namespace=None, shape=shape)
    assert server.log == [
        "page 0", "shape np0", "shape np1",
        "page 2", "shape np2", "shape np3",
        "page 4", "shape np4",
    ]  # fmt: skip
    assert all("managedFields" not in item["metadata"] for item in items)


# --- the resync's check --------------------------------------------------------------------------------


class Recorder:
    """The listener's side: what the informer reported."""

    def __init__(self) -> None:
        self.listed: list[list[dict[str, Any]]] = []

    def listener(self) -> Listener:
        return Listener(
            listed=lambda _r, _ns, items, _attempt: self.listed.append(items),
            event=lambda _r, _event: None,
            unavailable=lambda *_args: None,
        )


@dataclass
class Checked:
    """An informer over the paged server, whose relists are recorded instead of closing a watch (none
    runs here), and the versions its cache holds: at first, exactly the server's."""

    server: PagedServer
    informer: Informer
    relists: list[str]
    cache: dict[tuple[str, str], str]

    def check(self, cached: Any = None) -> tuple[str, list[str]]:
        outcome = self.informer.check(cached=cached or (lambda: dict(self.cache)), admits=lambda _body: True)
        return outcome, self.relists


@pytest.fixture
def checked(paged: tuple[Cluster, PagedServer], monkeypatch: pytest.MonkeyPatch) -> Checked:
    monkeypatch.setattr(informer_module, "CATCH_UP_SECONDS", 0.01)
    cluster, server = paged
    informer = Informer(cluster, NETWORK_POLICIES, namespace=None, listener=Recorder().listener())
    relists: list[str] = []
    informer.relist = lambda: relists.append("relist")  # type: ignore[method-assign]
    informer._watching = True  # listed, and following its watch
    cache = {
        (i["metadata"]["namespace"], i["metadata"]["name"]): i["metadata"]["resourceVersion"]
        for i in server.items
    }
    return Checked(server, informer, relists, cache)


def test_a_cache_the_watch_kept_true_is_consistent_and_nothing_is_relisted(checked: Checked) -> None:
    assert checked.check() == ("consistent", [])


def test_a_deletion_the_watch_never_delivered_is_a_miss_and_relists(checked: Checked) -> None:
    del checked.server.items[1]  # deleted on the server; the cache still holds it
    assert checked.check() == ("missed", ["relist"])


def test_a_change_the_watch_delivers_during_the_catch_up_is_not_a_miss(
    checked: Checked, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(informer_module, "CATCH_UP_SECONDS", 0.5)
    checked.server.items[3]["metadata"]["resourceVersion"] = "99"  # changed; its event is still on the way
    # The watch thread delivers it while the check waits: the cache catches up (an event that arrived
    # before the check began, not yet applied by the event loop, looks exactly like this).
    threading.Timer(0.05, lambda: checked.cache.update({("c", "np3"): "99"})).start()
    assert checked.check() == ("consistent", [])


def test_an_object_the_watch_touched_during_the_check_is_never_a_miss(checked: Checked) -> None:
    checked.cache[("a", "np4")] = "100"  # the watch brought a newer version than the list will show ...

    def cached() -> Mapping[tuple[str, str], str]:
        checked.informer._touch({"metadata": {"namespace": "a", "name": "np4"}})  # ... during the check
        return checked.cache

    assert checked.check(cached) == ("consistent", [])


def test_objects_the_cache_does_not_admit_are_left_out_of_the_check(checked: Checked) -> None:
    cache = {key: v for key, v in checked.cache.items() if key[0] != "b"}
    admits = lambda body: body["metadata"]["namespace"] != "b"  # noqa: E731
    assert checked.informer.check(cached=lambda: cache, admits=admits) == "consistent"
    assert checked.relists == []


def test_a_failed_check_relists_so_the_informer_learns_why(checked: Checked) -> None:
    checked.server.failure = 403  # RBAC revoked while the watch still runs
    assert checked.check() == ("failed", ["relist"])


def test_an_informer_not_watching_is_not_checked_it_lists_anyway(checked: Checked) -> None:
    checked.informer._watching = False  # its list failed (403, a CRD not served) and is being retried
    requests = len(checked.server.queries)
    assert checked.check() == ("skipped", [])
    assert len(checked.server.queries) == requests


def test_a_list_reaches_the_cache_slimmed() -> None:
    """The informer slims each page; the cache keeps what it is given (see `slim`)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"namespace": "a", "name": "p", "resourceVersion": "1", "managedFields": [{}]},
        "spec": {"containers": [{"name": "app", "image": "x", "env": [{"name": "K", "value": "V"}]}]},
    }

    class OneList:
        def list_with_version(self, resource: ResourceType, **kwargs: Any) -> tuple[list[Any], str]:
            return [kwargs["shape"](pod)], "1"

    recorder = Recorder()
    informer = Informer(OneList(), PODS, namespace=None, listener=recorder.listener())  # type: ignore[arg-type]
    informer._watch = lambda version: informer._stopped.set()  # type: ignore[method-assign]
    informer._run()
    cache = ObjectCache()
    cache.replace(PODS.kind, recorder.listed[0])
    kept = cache.get(PODS.kind, namespace="a", name="p")
    assert kept == slim(PODS.kind, pod)
    assert kept is not None and "managedFields" not in kept["metadata"]
    assert kept["spec"]["containers"] == [{"name": "app", "ports": []}]
