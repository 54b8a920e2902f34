"""Shared pytest fixtures: one real API server per session, and a fresh namespace per test.

The API server is the local control plane from hack/localcluster.py (built from the real Kubernetes
binaries, with the real Istio and cert-manager CRDs), or an existing cluster when
PAYGUARD_TEST_KUBECONFIG names one (e.g. kind). Unit tests never ask for it, so they need no cluster.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kube import AUDIT_POLICY, TestCluster
from localcluster import LocalCluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[TestCluster]:
    existing = os.environ.get("PAYGUARD_TEST_KUBECONFIG")
    if existing:
        yield TestCluster(Path(existing), is_local=False)
        return
    with tempfile.TemporaryDirectory(prefix="payguard-test-cluster-") as state:
        policy = Path(state) / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        # With the real cert-manager controller and its CA ClusterIssuer payments-ca.
        local = LocalCluster(state_dir=Path(state) / "cluster", audit_policy=policy, cert_manager=True)
        try:
            local.up()
            yield TestCluster(local.kubeconfig, audit_log=local.audit_log, local=local)
        finally:
            local.down()


@pytest.fixture
def namespace(cluster: TestCluster) -> Iterator[str]:
    name = cluster.create_namespace()
    yield name
    cluster.delete_namespace(name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs the cluster; mark it so `-m 'not integration'` works."""
    for item in items:
        if "/tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
