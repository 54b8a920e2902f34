"""Runs payguard in-process against a test cluster, under its real RBAC and a ServiceAccount token."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client

from chart_tools import NAMESPACE as OPERATOR_NAMESPACE
from chart_tools import RELEASE, render
from kube import TestCluster
from payguard import handlers
from payguard.settings import RunSettings

REPO = Path(__file__).resolve().parent.parent
RBAC_RULES = REPO / "charts" / "payguard" / "files" / "clusterrole-rules.yaml"
OPERATOR_ACCOUNT = RELEASE  # the chart names its ServiceAccount after a release called "payguard"
T = TypeVar("T")


def rbac_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load(RBAC_RULES.read_text())
    return rules


def grant_operator_rbac(cluster: TestCluster) -> None:
    """Creates exactly the ServiceAccount and RBAC the Helm chart renders (the mesh config Role too)."""
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    for document in render(namespace=OPERATOR_NAMESPACE):
        kind = document["kind"]
        if kind in ("ClusterRole", "ClusterRoleBinding"):
            cluster.apply(document, namespace=None)
        elif kind == "ServiceAccount":
            cluster.apply(document, namespace=OPERATOR_NAMESPACE)
        elif kind in ("Role", "RoleBinding"):  # the mesh config's, in the mesh root namespace
            namespace = document["metadata"]["namespace"]
            ensure_namespace(cluster, namespace)
            cluster.apply(document, namespace=namespace)


def ensure_namespace(cluster: TestCluster, name: str) -> None:
    try:
        cluster.create_namespace_named(name)
    except client.exceptions.ApiException as error:
        if error.status != 409:
            raise


def operator_credentials(cluster: TestCluster, *, directory: Path) -> Path:
    """The chart's RBAC on the cluster, and a kubeconfig with a token of the operator's ServiceAccount."""
    grant_operator_rbac(cluster)
    return cluster.kubeconfig_for_service_account(
        namespace=OPERATOR_NAMESPACE, service_account=OPERATOR_ACCOUNT, directory=directory
    )


def chart_role() -> str:
    """The name of the ClusterRole the chart renders."""
    return next(
        d["metadata"]["name"] for d in render(namespace=OPERATOR_NAMESPACE) if d["kind"] == "ClusterRole"
    )


@contextmanager
def running_operator(settings: RunSettings, *, startup_timeout: float = 60.0) -> Iterator[None]:
    """kopf's own event loop in a thread, stopped through its stop flag when the block ends."""
    stop = threading.Event()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(handlers.operate(settings, stop_flag=stop, ready_flag=ready))
        except BaseException as error:  # surfaced to the test below
            failure.append(error)

    thread = threading.Thread(target=run, name="payguard-operator", daemon=True)
    thread.start()
    if not ready.wait(startup_timeout):
        stop.set()
        raise TimeoutError(f"payguard did not start: {failure}")
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        if failure:
            raise failure[0]


def eventually(
    probe: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """Polls until probe returns something truthy; fails with `what` (and the last value) otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}; last value: {last!r}")


# PaymentServices with this label are left to a separately started operator: the session-wide one runs
# with `--selector SEPARATE_LABEL!=separate`, so two operators never reconcile the same service.
SEPARATE_LABEL = "payguard.dev/test-operator"
SEPARATE_SELECTOR = f"{SEPARATE_LABEL}=separate"


@dataclass
class OperatorProcess:
    """`payguard run` as its own process, started with the flags under test."""

    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self, kubeconfig: Path, flags: list[str], *, timeout: float = 60.0) -> None:
        """Starts the process and waits until it logs that its workers run."""
        self.spawn(kubeconfig, flags)

        def started() -> bool:
            assert self.process is not None and self.process.poll() is None, f"payguard exited:\n{self.log()}"
            return "Started " in self.this_run()

        eventually(started, timeout=timeout, what="payguard run to log Started")

    def spawn(self, kubeconfig: Path, flags: list[str]) -> None:
        """Starts the process without waiting for it (e.g. while the API server is down)."""
        command = [sys.executable, "-m", "payguard", "run", "--kubeconfig", str(kubeconfig), *flags]
        environment = {**os.environ, "PYTHONPATH": str(REPO / "operator")}
        with self.log_path.open("ab") as log:
            log.write(f"--- started: {' '.join(command)}\n".encode())
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)

    def tracebacks(self) -> str:
        """Every traceback in the log with the lines before it, last: what a failing check must show
        (CI keeps only the end of the output)."""
        lines = self.log().splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
        return "\n...\n".join("\n".join(lines[max(0, i - 5) : i + 40]) for i in starts)

    def this_run(self) -> str:
        """The log lines of the latest start only."""
        return self.log().split("--- started")[-1]

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a node dies."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def operator_process(kubeconfig: Path, flags: list[str], *, log_path: Path) -> Iterator[OperatorProcess]:
    operator = OperatorProcess(log_path)
    operator.start(kubeconfig, flags)
    try:
        yield operator
    finally:
        operator.stop()
