"""A restart that finds every control as rendered: one listing per watched kind and scope, one pass per
PaymentService, and not one write (the API server's audit log says so, not the operator's own word)."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from test_operator_settings import audited_requests, separate_checkout, wait_reconciled

from kube import AUDITED_USER, TestCluster
from operator_harness import SEPARATE_SELECTOR, OperatorProcess, eventually

SERVICES = 3
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def _passes(log: str) -> list[str]:
    return [line for line in log.splitlines() if "Reconciled PaymentService" in line]


def test_a_restart_over_settled_services_lists_each_kind_once_and_writes_nothing(
    cluster: TestCluster, namespace: str, audited_operator_kubeconfig: Path, tmp_path: Path
) -> None:
    if cluster.audit_log is None:
        pytest.skip(
            "needs the local control plane's audit log; PAYGUARD_TEST_KUBECONFIG names another cluster"
        )
    names = [f"shop-{index}" for index in range(SERVICES)]
    for name in names:
        service = separate_checkout(namespace, name=name)
        for workload in service["spec"][
            "workloads"
        ]:  # each its own platform: nothing shared, nothing to report
            workload["selector"]["app.kubernetes.io/part-of"] = name
            workload["serviceAccount"] = f"{name}-{workload['serviceAccount']}"
        cluster.enrol(service)
        cluster.apply(service)
    flags = [
        "-n",
        namespace,
        "--selector",
        SEPARATE_SELECTOR,
        "--resync-seconds",
        "3600",
        "--log-level",
        "DEBUG",
    ]
    first = OperatorProcess(tmp_path / "first.log")
    try:
        first.start(audited_operator_kubeconfig, flags)
        for name in names:
            wait_reconciled(cluster, namespace, name)
        eventually(lambda: _quiet_for(first, seconds=3.0), what="the first operator fell quiet", timeout=60)
    finally:
        first.stop()

    restarted = time.time()
    second = OperatorProcess(tmp_path / "second.log")
    try:
        second.start(audited_operator_kubeconfig, flags)
        eventually(lambda: len(_passes(second.log())) >= SERVICES, what="a pass per service", timeout=60)
        eventually(lambda: _quiet_for(second, seconds=3.0), what="the restart fell quiet", timeout=60)
        passes = _passes(second.log())
    finally:
        second.stop()

    assert len(passes) == SERVICES, passes
    assert all("with no write" in line for line in passes), passes
    requests = audited_requests(cluster.audit_log, since=restarted)
    writes = [r for r in requests if r["verb"] in WRITE_VERBS]
    assert writes == [], writes
    # Listings answered: a list RBAC refuses (this ServiceAccount has no mesh-config Role) is retried.
    # First pages only: a list read on in pages (`continue=`) is one listing.
    listed = [r for r in _answered_lists(cluster.audit_log, since=restarted) if "continue=" not in r["uri"]]
    lists = Counter((r["resource"], r["namespace"]) for r in listed)
    assert lists, "the audit log recorded no listing"
    repeated = [r["uri"] for r in listed if lists[(r["resource"], r["namespace"])] > 1]
    assert repeated == [], "\n".join(repeated)


def _answered_lists(log: Path, *, since: float) -> list[dict[str, str]]:
    """The operator's list requests the API server answered (200) since `since`."""
    answered = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["user"]["username"] != AUDITED_USER or event.get("stage") != "ResponseComplete":
            continue
        received = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if event["verb"] != "list" or received.timestamp() < since - 1:
            continue
        if (event.get("responseStatus") or {}).get("code") == 200:
            ref = event.get("objectRef") or {}
            answered.append(
                {
                    "resource": ref.get("resource", ""),
                    "namespace": ref.get("namespace", ""),
                    "uri": event["requestURI"],
                }
            )
    return answered


def _quiet_for(operator: OperatorProcess, *, seconds: float) -> bool:
    """No pass for `seconds`: the log stopped growing with passes."""
    before = len(_passes(operator.log()))
    time.sleep(seconds)
    return len(_passes(operator.log())) == before and before > 0
