"""Integration fixtures: payguard running in-process under its real RBAC for the whole session."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from cert_manager import CertManager
from kube import AUDITED_USER, TestCluster
from localcluster import free_port
from operator_harness import (
    OPERATOR_NAMESPACE,
    SEPARATE_LABEL,
    chart_role,
    operator_credentials,
    running_operator,
)
from payguard.cli import parse_selector
from payguard.settings import RunSettings

RESYNC_SECONDS = 2.0  # short, so tests can watch resyncs happen and write nothing


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return operator_credentials(cluster, directory=tmp_path_factory.mktemp("operator"))


@pytest.fixture(scope="session")
def audited_operator_kubeconfig(
    cluster: TestCluster, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The chart's ClusterRole under a second ServiceAccount, the one the API server's audit log records."""
    account = AUDITED_USER.rsplit(":", 1)[1]
    cluster.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
        namespace=OPERATOR_NAMESPACE,
    )
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": account},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": chart_role()},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": OPERATOR_NAMESPACE}],
        }
    )
    return cluster.kubeconfig_for_service_account(
        namespace=OPERATOR_NAMESPACE, service_account=account, directory=tmp_path_factory.mktemp("audited")
    )


@pytest.fixture(scope="session")
def cert_manager(cluster: TestCluster) -> CertManager:
    """The real cert-manager controller of the local control plane, with its CA ClusterIssuer payments-ca
    (the one the examples name); on an existing cluster, the cert-manager installed there."""
    return CertManager(cluster)


class OperatorLog(logging.Handler):
    """Every log line the in-process operator (and kopf) writes, for leak checks."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="session")
def operator_log() -> Iterator[OperatorLog]:
    handler = OperatorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)  # the most talkative the operator can be
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.fixture(scope="session")
def payguard_operator(
    operator_kubeconfig: Path, cert_manager: CertManager, operator_log: OperatorLog
) -> Iterator[RunSettings]:
    settings = RunSettings(
        kubeconfig=str(operator_kubeconfig),
        selector=parse_selector(f"{SEPARATE_LABEL}!=separate"),
        resync_seconds=RESYNC_SECONDS,
        workers=4,
        metrics_port=free_port(),
        metrics_address="127.0.0.1",
    )
    with running_operator(settings):
        yield settings
