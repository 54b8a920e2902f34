"""Changing a platform setting and restarting payguard re-renders every PaymentService: exactly one write
per changed NetworkPolicy, none to any other object, counted by the API server's own audit log."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_operator_settings import audited_requests, children, separate_checkout, wait_reconciled
from test_reconcile import get_service

from kube import TestCluster
from operator_harness import SEPARATE_LABEL, SEPARATE_SELECTOR, OperatorProcess, eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHILD_KINDS = ("PeerAuthentication", "AuthorizationPolicy", "NetworkPolicy", "Certificate")
NODE_LOCAL_DNS = {"ipBlock": {"cidr": "169.254.20.10/32"}}
WRITES = ("create", "update", "patch", "delete", "deletecollection")


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(tmp_path / "payguard.log")
    yield process
    process.stop()


def separate_refunds(namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((EXAMPLES / "cross-namespace-caller.yaml").read_text())
    body["metadata"].update(namespace=namespace, labels={SEPARATE_LABEL: "separate"})
    return body


def versions(cluster: TestCluster, namespace: str) -> dict[str, str]:
    found = {
        f"{kind}/{c['metadata']['name']}": c["metadata"]["resourceVersion"]
        for kind in CHILD_KINDS
        for c in children(cluster, kind, namespace)
    }
    for name in ("checkout", "refunds"):
        found[f"PaymentService/{name}"] = get_service(cluster, namespace, name)["metadata"]["resourceVersion"]
    return found


def test_a_platform_change_rewrites_each_network_policy_once_and_nothing_else(
    cluster: TestCluster, namespace: str, audited_operator_kubeconfig: Path, operator: OperatorProcess
) -> None:
    if cluster.audit_log is None:
        pytest.skip(
            "needs the local control plane's audit log; PAYGUARD_TEST_KUBECONFIG names another cluster"
        )
    cluster.apply(separate_checkout(namespace))
    cluster.apply(separate_refunds(namespace))
    scope = ["-n", namespace, "--selector", SEPARATE_SELECTOR]
    operator.start(audited_operator_kubeconfig, scope)
    for name in ("checkout", "refunds"):
        wait_reconciled(cluster, namespace, name)
    time.sleep(3)  # let the first passes and their watch echoes settle
    operator.stop()
    # The real status schema keeps the informational note on the auditor, whom L3 admits by namespace.
    (summary,) = get_service(cluster, namespace, "refunds")["status"]["workloads"]
    assert [note.split(":")[0] for note in summary["findings"]] == ["callers[1] support-tools/refund-auditor"]
    before = versions(cluster, namespace)
    policies = sorted(key for key in before if key.startswith("NetworkPolicy/"))
    assert len(policies) == 5  # checkout's four workloads and refunds' one

    restarted = time.time()
    node_local = ["--dns", "169.254.20.10", "--dns", "kube-system/k8s-app=kube-dns"]
    operator.start(audited_operator_kubeconfig, [*scope, *node_local])

    def rewritten() -> bool:
        egress = [p["spec"]["egress"] for p in children(cluster, "NetworkPolicy", namespace)]
        return len(egress) == 5 and all(NODE_LOCAL_DNS in rule["to"] for e in egress for rule in e[-2:-1])

    eventually(rewritten, timeout=60, what="every NetworkPolicy to allow NodeLocal DNS")
    time.sleep(3)  # room for any stray write to show up
    operator.stop()

    after = versions(cluster, namespace)
    changed = sorted(key for key in before if after[key] != before[key])
    assert changed == policies, "objects other than the NetworkPolicies changed"
    writes = [
        r
        for r in audited_requests(cluster.audit_log, since=restarted)
        if r["verb"] in WRITES and r["namespace"] == namespace
    ]
    by_resource = Counter((r["resource"], r["verb"]) for r in writes)
    # One Updated Event per PaymentService tells what the pass applied (the audit trail, PCI DSS 10).
    assert by_resource == {("networkpolicies", "patch"): 5, ("events", "create"): 2}, writes
    patched = Counter(
        r["uri"].split("?")[0].rsplit("/", 1)[1] for r in writes if r["resource"] == "networkpolicies"
    )
    assert sorted(patched) == sorted(key.split("/", 1)[1] for key in policies)
    assert set(patched.values()) == {1}
