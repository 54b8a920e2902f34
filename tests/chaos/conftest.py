"""Chaos fixtures: a control plane of the chaos tests' own, whose components they may stop, kill and
restart and whose etcd they may write behind the API server's back, without disturbing the session cluster.

It is the local control plane built like the session one (tests/conftest.py): the same binaries, the same
CRDs (Istio, cert-manager, monitoring, payguard); its audit policy also records the operator's writes.
Faults need processes we own, so the chaos tests skip when PAYGUARD_TEST_KUBECONFIG names an existing
cluster.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kube import CHAOS_AUDIT_POLICY
from localcluster import LocalCluster


@pytest.fixture(scope="session")
def chaos_cluster() -> Iterator[LocalCluster]:
    """A fresh LocalCluster for the tests under tests/chaos, created on first use and torn down at the end."""
    if os.environ.get("PAYGUARD_TEST_KUBECONFIG"):
        pytest.skip(
            "chaos tests inject faults into the local control plane's own processes; "
            "PAYGUARD_TEST_KUBECONFIG names an existing cluster"
        )
    with tempfile.TemporaryDirectory(prefix="payguard-chaos-cluster-") as state:
        policy = Path(state) / "audit-policy.yaml"
        policy.write_text(CHAOS_AUDIT_POLICY)
        local = LocalCluster(state_dir=Path(state) / "cluster", audit_policy=policy)
        try:
            local.up()
            yield local
        finally:
            local.down()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Chaos tests need a real API server, like tests/integration: `-m 'not integration'` leaves them out."""
    for item in items:
        if "/tests/chaos/" in str(item.path):
            item.add_marker(pytest.mark.integration)
