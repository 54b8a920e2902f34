"""Owns the benchmark's world: a fresh local control plane with the audit log on, payguard's chart RBAC,
one ServiceAccount per measured client (payguard, the floor, the cert-manager stand-in), and the
payguard and stand-in processes.

Each measured client has its own identity, so the audit log tells their requests apart by user.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from bench import REPO
from bench.processes import ManagedProcess, Sampler, wait_until
from chart_tools import render
from kube import TestCluster
from localcluster import LocalCluster, free_port
from operator_harness import OPERATOR_ACCOUNT, OPERATOR_NAMESPACE, grant_operator_rbac

AUDIT_POLICY = Path(__file__).resolve().parent / "audit-policy.yaml"
BENCH_NAMESPACE = "payguard-bench"
FLOOR_ACCOUNT = "floor"
ISSUER_ACCOUNT = "fake-cert-manager"
ISSUER_NAME = "payments-ca"  # the ClusterIssuer examples/checkout.yaml names
TOKEN_SECONDS = 4 * 3600
PAYGUARD_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
FLOOR_USER = f"system:serviceaccount:{BENCH_NAMESPACE}:{FLOOR_ACCOUNT}"
ISSUER_USER = f"system:serviceaccount:{BENCH_NAMESPACE}:{ISSUER_ACCOUNT}"
BIN = REPO / ".venv" / "bin"
# payguard's flags for the profiled burst: none, its shipped defaults (no client-side rate limit since
# issue 19), so the profile shows the configuration the other bursts measured.
PROFILED_ARGS: tuple[str, ...] = ()


@dataclass
class Identities:
    """Kubeconfigs of the three measured clients, each a ServiceAccount token."""

    operator: Path
    floor: Path
    issuer: Path


@dataclass
class BenchEnvironment:
    """The control plane, the identities and the long-running processes of one benchmark run."""

    state_dir: Path
    workers: int
    resync_seconds: float
    cluster: LocalCluster = field(init=False)
    admin: TestCluster = field(init=False)
    identities: Identities = field(init=False)
    sampler: Sampler = field(default_factory=Sampler)
    operator: ManagedProcess | None = None
    issuer: ManagedProcess | None = None
    metrics_port: int = 0
    operator_starts: int = 0
    source: OperatorSource | None = None

    def up(self) -> None:
        self.source = snapshot_operator(self.state_dir / "src")
        self.cluster = LocalCluster(state_dir=self.state_dir / "cluster", audit_policy=AUDIT_POLICY)
        self.cluster.up()
        self.admin = TestCluster(self.cluster.kubeconfig)
        self.identities = self._grant_identities()
        self._watch_control_plane()
        self.sampler.start()

    def down(self) -> None:
        self.sampler.stop()
        for process in (self.operator, self.issuer):
            if process is not None:
                process.stop()
        self.cluster.down()

    @property
    def audit_log(self) -> Path:
        return self.cluster.audit_log

    # -- payguard

    def start_operator(self, extra_args: Sequence[str] = ()) -> int:
        """payguard as a separate process, under its chart RBAC, with metrics on a loopback port."""
        self.operator_starts += 1
        self.metrics_port = free_port()
        self.operator = ManagedProcess(
            name="payguard",
            argv=[
                str(BIN / "payguard"),
                "run",
                "--kubeconfig",
                str(self.identities.operator),
                "--workers",
                str(self.workers),
                "--resync-seconds",
                str(self.resync_seconds),
                "--metrics-port",
                str(self.metrics_port),
                "--metrics-address",
                "127.0.0.1",
                *extra_args,
            ],
            log_path=self.state_dir / "payguard.log",
        )
        assert self.source is not None
        pid = self.operator.start(env={**os.environ, "PYTHONPATH": str(self.source.path)})
        self.sampler.watch("payguard", pid)
        if not wait_until(self._operator_started, timeout=60, interval=0.1):
            raise RuntimeError(f"payguard did not start; see {self.operator.log_path}")
        return pid

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.stop()
            self.operator = None

    def _operator_started(self) -> bool:
        assert self.operator is not None
        if not self.operator.is_running():
            raise RuntimeError(f"payguard exited; see {self.operator.log_path}")
        text = self.operator.log_path.read_text(errors="replace")
        return text.count("workers; watching") >= self.operator_starts

    # -- the cert-manager stand-in

    def start_issuer(self) -> None:
        """tests/fake_cert_manager.py in its own process and identity, as `make demo` runs it."""
        self.issuer = ManagedProcess(
            name="fake-cert-manager",
            argv=[
                sys.executable,
                str(REPO / "tests" / "fake_cert_manager.py"),
                str(self.identities.issuer),
                ISSUER_NAME,
            ],
            log_path=self.state_dir / "fake-cert-manager.log",
        )
        self.sampler.watch("fake-cert-manager", self.issuer.start())

    # -- setup

    def _grant_identities(self) -> Identities:
        grant_operator_rbac(self.admin)  # payguard-system/payguard, exactly as the chart renders it
        self._create_namespace(BENCH_NAMESPACE)
        core = client.CoreV1Api(self.admin.api_client)
        for account in (FLOOR_ACCOUNT, ISSUER_ACCOUNT):
            core.create_namespaced_service_account(
                BENCH_NAMESPACE, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account))
            )
        # The floor writes what payguard writes, so it gets payguard's own ClusterRole.
        self._bind(FLOOR_ACCOUNT, cluster_role=_chart_cluster_role_name())
        self._bind(ISSUER_ACCOUNT, cluster_role="cluster-admin")
        directory = self.state_dir / "identities"
        directory.mkdir(parents=True, exist_ok=True)

        def mint(namespace: str, account: str) -> Path:
            return self.admin.kubeconfig_for_service_account(
                namespace=namespace, service_account=account, directory=directory, seconds=TOKEN_SECONDS
            )

        return Identities(
            operator=mint(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT),
            floor=mint(BENCH_NAMESPACE, FLOOR_ACCOUNT),
            issuer=mint(BENCH_NAMESPACE, ISSUER_ACCOUNT),
        )

    def _bind(self, account: str, *, cluster_role: str) -> None:
        binding: dict[str, Any] = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"payguard-bench-{account}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": BENCH_NAMESPACE}],
        }
        self.admin.apply(binding)

    def _create_namespace(self, name: str) -> None:
        try:
            self.admin.create_namespace_named(name)
        except client.exceptions.ApiException as error:
            if error.status != 409:
                raise

    def _watch_control_plane(self) -> None:
        """The API server and etcd share the two cores with payguard: their CPU is reported too."""
        for name in ("kube-apiserver", "etcd"):
            pid_file = self.cluster.state_dir / f"{name}.pid"
            self.sampler.watch(name, int(pid_file.read_text()))


def _chart_cluster_role_name() -> str:
    [role] = [doc for doc in render(namespace=OPERATOR_NAMESPACE) if doc["kind"] == "ClusterRole"]
    return str(role["metadata"]["name"])


def kubernetes_server_version(admin: TestCluster) -> str:
    info = client.VersionApi(admin.api_client).get_code()
    return str(info.git_version)


@dataclass(frozen=True)
class OperatorSource:
    """The payguard code the benchmark runs: HEAD's operator/ folder, exported when the run starts."""

    path: Path  # put first on payguard's PYTHONPATH, ahead of the editable install
    commit: str
    uncommitted_changes: bool  # the work tree had edits under operator/ that are not measured


def snapshot_operator(directory: Path) -> OperatorSource:
    """Exports HEAD's operator/ so that edits made while a long run goes on do not mix into it."""
    directory.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", "HEAD", "operator"], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "operator"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    return OperatorSource(path=directory / "operator", commit=git_commit(), uncommitted_changes=bool(dirty))


def git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"
