"""The periodic resync checks the cache against a list read while the watches go on: on a settled
cluster it lists each kind, reopens no watch (a relist would, and every change made meanwhile would be
seen only when its list ended) and writes nothing (the API server's audit log says so); an event the
watch lost is found by the check, and the relist mends the cache."""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from test_operator_settings import separate_checkout, wait_reconciled
from test_restart_quiet import WRITE_VERBS, _answered_lists, _passes, _quiet_for

from kube import AUDITED_USER, TestCluster
from operator_harness import SEPARATE_SELECTOR, OperatorProcess, eventually
from payguard.cache import ObjectCache
from payguard.cluster import Cluster, load_api_client
from payguard.informer import Informer, Listener
from payguard.kinds import NETWORK_POLICIES, ResourceType

RESYNC_SECONDS = 2
RESYNCS = 3


def test_a_resync_on_a_settled_cluster_lists_each_kind_reopens_no_watch_and_writes_nothing(
    cluster: TestCluster, namespace: str, audited_operator_kubeconfig: Path, tmp_path: Path
) -> None:
    if cluster.audit_log is None:
        pytest.skip(
            "needs the local control plane's audit log; PAYGUARD_TEST_KUBECONFIG names another cluster"
        )
    service = separate_checkout(namespace, name="resynced")
    cluster.enrol(service)
    cluster.apply(service)
    flags = ["-n", namespace, "--selector", SEPARATE_SELECTOR, "--resync-seconds", str(RESYNC_SECONDS)]
    operator = OperatorProcess(tmp_path / "operator.log")
    try:
        operator.start(audited_operator_kubeconfig, [*flags, "--log-level", "DEBUG"])
        wait_reconciled(cluster, namespace, "resynced")
        eventually(lambda: _settled(operator), what="the operator's own writes settled", timeout=60)
        settled = time.time()
        passes = len(_passes(operator.log()))
        eventually(
            lambda: len(_passes(operator.log())) >= passes + RESYNCS,
            what=f"{RESYNCS} resyncs",
            timeout=RESYNC_SECONDS * RESYNCS * 10,
        )
        log = operator.this_run()
    finally:
        operator.stop()  # every watch it held ends now, so the audit log has them all

    assert "Relisting" not in log, log
    requests = _requests(cluster.audit_log, since=settled)
    assert [r for r in requests if r["verb"] in WRITE_VERBS] == []
    reopened = [r["uri"] for r in requests if r["verb"] == "watch"]
    assert reopened == [], "\n".join(reopened)
    # Each kind checked at every resync: first pages of a list (a continued page is the same list).
    checked = Counter(
        r["resource"]
        for r in _answered_lists(cluster.audit_log, since=settled)
        if "continue=" not in r["uri"]
    )
    for resource in ("networkpolicies", "authorizationpolicies", "peerauthentications", "pods"):
        assert checked[resource] >= RESYNCS - 1, checked


def _settled(operator: OperatorProcess) -> bool:
    """Quiet, and its passes since then wrote nothing."""
    return _quiet_for(operator, seconds=1.0) and "with no write" in _passes(operator.log())[-1]


def _requests(log: Path, *, since: float) -> list[dict[str, str]]:
    """The audited operator's requests received since `since` (watches included: they are logged when
    they end)."""
    found = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["user"]["username"] != AUDITED_USER or event.get("stage") != "ResponseComplete":
            continue
        received = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if received.timestamp() >= since:
            found.append(
                {"verb": event["verb"], "uri": event["requestURI"], **(event.get("objectRef") or {})}
            )
    return found


def test_an_event_the_watch_lost_is_found_by_the_check_and_the_relist_mends_the_cache(
    cluster: TestCluster, namespace: str
) -> None:
    """A real API server, a real informer and cache; the fault (one DELETED event lost between the watch
    and the cache) is injected, because a real server cannot be asked to lose one."""
    cache = ObjectCache()
    lost: list[str] = []

    def event(resource: ResourceType, watched: Mapping[str, Any]) -> None:
        name = watched["object"]["metadata"]["name"]
        if watched.get("type") == "DELETED" and name == "doomed" and not lost:
            lost.append(name)  # never reaches the cache
        elif watched.get("type") == "DELETED":
            cache.remove(resource.kind, namespace=namespace, name=name)
        else:
            cache.put(resource.kind, watched["object"])

    listener = Listener(
        listed=lambda resource, ns, items, _attempt: cache.replace(resource.kind, items, namespace=ns),
        event=event,
        unavailable=lambda *_args: None,
    )
    api_client = load_api_client(str(cluster.kubeconfig))
    informer = Informer(Cluster(api_client), NETWORK_POLICIES, namespace=namespace, listener=listener)
    names = lambda: sorted(p["metadata"]["name"] for p in cache.list("NetworkPolicy"))  # noqa: E731
    check = functools.partial(
        informer.check,
        cached=functools.partial(cache.versions, "NetworkPolicy", namespace=namespace),
        admits=lambda _body: True,
    )
    try:
        for name in ("kept", "doomed"):
            cluster.apply(_network_policy(namespace, name))
        informer.start()
        eventually(lambda: names() == ["doomed", "kept"], what="both policies cached")
        eventually(lambda: informer._watching, what="the informer watching")
        assert check() == "consistent"

        client.NetworkingV1Api(cluster.api_client).delete_namespaced_network_policy("doomed", namespace)
        eventually(lambda: lost == ["doomed"], what="the DELETED event lost")
        assert names() == ["doomed", "kept"]  # the cache is wrong, and no event will ever say so

        assert check() == "missed"
        eventually(lambda: names() == ["kept"], what="the relist mended the cache")
        eventually(lambda: informer._watching, what="the informer watching again")
        assert check() == "consistent"
    finally:
        informer.stop()
        api_client.close()


def _network_policy(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": {"app": name}}, "policyTypes": ["Ingress"]},
    }
