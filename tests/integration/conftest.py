"""Integration fixtures: payguard running in-process under its real RBAC for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kube import TestCluster
from operator_harness import OPERATOR_ACCOUNT, OPERATOR_NAMESPACE, grant_operator_rbac, running_operator
from payguard.settings import RunSettings

RESYNC_SECONDS = 2.0  # short, so tests can watch resyncs happen and write nothing


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    grant_operator_rbac(cluster)
    return cluster.kubeconfig_for_service_account(
        namespace=OPERATOR_NAMESPACE,
        service_account=OPERATOR_ACCOUNT,
        directory=tmp_path_factory.mktemp("operator"),
    )


@pytest.fixture(scope="session")
def payguard_operator(operator_kubeconfig: Path) -> Iterator[RunSettings]:
    settings = RunSettings(kubeconfig=str(operator_kubeconfig), resync_seconds=RESYNC_SECONDS, workers=4)
    with running_operator(settings):
        yield settings
