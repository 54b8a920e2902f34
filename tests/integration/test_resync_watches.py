"""The periodic resync checks the cache against a list read while the watches go on: on a settled
cluster it lists each kind, reopens no watch (a relist would, and every change made meanwhile would be
seen only when its list ended) and writes nothing (the API server's audit log says so)."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from test_operator_settings import separate_checkout, wait_reconciled
from test_restart_quiet import WRITE_VERBS, _answered_lists, _passes, _quiet_for

from kube import AUDITED_USER, TestCluster
from operator_harness import SEPARATE_SELECTOR, OperatorProcess, eventually

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
