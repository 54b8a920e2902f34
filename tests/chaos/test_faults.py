"""Faults, on a control plane of the chaos suite's own: after each, every expected control exists exactly
once as rendered, no orphan is left, every status tells the truth, and writes stop once settled.

payguard runs as its own process under the chart's RBAC with the default --resync-seconds (300 s), so
every repair below comes from the watches, never from a resync. Repair times are printed (pytest -s)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from chaos_world import ChaosWorld
from fake_cert_manager import FakeCertManager
from kube import TestCluster
from localcluster import LocalCluster, free_port, install_crds
from operator_harness import OperatorProcess, eventually, operator_credentials

ISSUER = "payments-ca"
AUTHORIZATION_POLICY_CRD = "authorizationpolicies.security.istio.io"
PEER_AUTHENTICATION_CRD = "peerauthentications.security.istio.io"


@pytest.fixture(scope="module")
def admin(chaos_cluster: LocalCluster) -> TestCluster:
    return TestCluster(chaos_cluster.kubeconfig)


@pytest.fixture(scope="module")
def operator_kubeconfig(admin: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return operator_credentials(admin, directory=tmp_path_factory.mktemp("op"))


@pytest.fixture(scope="module")
def issuer(admin: TestCluster) -> str:
    FakeCertManager(admin.api_client).create_cluster_issuer(ISSUER)
    return ISSUER


@pytest.fixture
def cert_manager(admin: TestCluster, issuer: str) -> Iterator[FakeCertManager]:
    """A fresh stand-in per test: one that lived through an API server restart may have stopped signing."""
    fake = FakeCertManager(admin.api_client)
    fake.start()
    yield fake
    fake.stop()  # its errors while the API server was down are expected here


@pytest.fixture
def world(
    chaos_cluster: LocalCluster,
    admin: TestCluster,
    operator_kubeconfig: Path,
    cert_manager: FakeCertManager,
    tmp_path: Path,
) -> Iterator[ChaosWorld]:
    operator = OperatorProcess(tmp_path / "payguard.log")
    world = ChaosWorld(chaos_cluster, admin, operator_kubeconfig, operator, metrics_port=free_port())
    yield world
    operator.stop()
    assert not operator.tracebacks(), operator.tracebacks()
    for name, seconds in world.timings.items():
        print(f"chaos timing: {name}: {seconds:.2f}s")


@pytest.fixture
def namespace(admin: TestCluster) -> Iterator[str]:
    name = admin.create_namespace("chaos")
    yield name
    try:
        admin.delete_namespace(name)
    except client.exceptions.ApiException as error:
        assert error.status == 404


def delete_child(admin: TestCluster, kind: str, namespace: str, name: str) -> None:
    group, version, plural = {
        "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies"),
        "PeerAuthentication": ("security.istio.io", "v1", "peerauthentications"),
    }[kind]
    client.CustomObjectsApi(admin.api_client).delete_namespaced_custom_object(
        group, version, namespace, plural, name
    )


def _crd_exists(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    try:
        extensions.read_custom_resource_definition(name)
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_deletions_behind_the_api_servers_back_and_compaction_are_repaired_after_the_410(
    world: ChaosWorld, namespace: str
) -> None:
    world.start_operator()
    world.apply_checkout(namespace)
    world.wait_converged(namespace, ["checkout"], timeout=60)

    world.local.stop_component("kube-apiserver")
    for group, plural, name in (
        ("networking.k8s.io", "networkpolicies", "checkout-order-service"),
        ("security.istio.io", "peerauthentications", "checkout-order-service"),
        ("security.istio.io", "authorizationpolicies", "checkout-fraud-engine"),
        ("cert-manager.io", "certificates", "checkout-api-gateway"),
    ):
        world.local.etcd_delete(world.local.object_key(group, plural, namespace, name))
    world.local.etcd_compact()  # the operator's watches resume past compaction: 410 Gone
    world.local.start_component("kube-apiserver")

    world.timings["etcd deletions + compaction: repaired after the API server returned"] = (
        world.wait_converged(namespace, ["checkout"], timeout=10)
    )
    world.assert_quiet(namespace)


def test_tampering_as_the_api_server_returns_is_repaired_within_seconds(
    world: ChaosWorld, namespace: str
) -> None:
    world.start_operator()
    world.apply_checkout(namespace)
    world.wait_converged(namespace, ["checkout"], timeout=60)

    world.local.stop_component("kube-apiserver", kill=True)
    time.sleep(5)
    world.local.start_component("kube-apiserver")
    delete_child(world.admin, "NetworkPolicy", namespace, "checkout-order-service")

    seconds = world.wait_converged(namespace, ["checkout"], timeout=5)
    world.timings["deletion right after an API server restart: repaired"] = seconds
    world.assert_quiet(namespace)


def test_a_sigkill_mid_burst_loses_nothing(world: ChaosWorld, namespace: str) -> None:
    names = [f"svc{i}" for i in range(10)]
    world.start_operator()
    for name in names:
        world.apply_checkout(namespace, name)
    time.sleep(1.0)
    world.operator.kill()
    world.start_operator()

    world.timings["10 services, operator SIGKILLed mid-burst: converged after restart"] = (
        world.wait_converged(namespace, names, timeout=90)
    )
    world.assert_quiet(namespace)


def test_a_crd_deleted_while_running_is_named_in_status_and_repaired_when_it_returns(
    world: ChaosWorld, namespace: str
) -> None:
    world.start_operator()
    world.apply_checkout(namespace)
    world.wait_converged(namespace, ["checkout"], timeout=60)
    extensions = client.ApiextensionsV1Api(world.admin.api_client)

    extensions.delete_custom_resource_definition(AUTHORIZATION_POLICY_CRD)

    def named_in_status() -> bool:
        conditions = {c["type"]: c for c in world.service(namespace)["status"]["conditions"]}
        enforced = conditions["AuthorizationEnforced"]
        return enforced["status"] == "Unknown" and AUTHORIZATION_POLICY_CRD in enforced["message"]

    eventually(named_in_status, timeout=20, what="AuthorizationEnforced Unknown naming the CRD")
    assert not world.ready(namespace)
    status, body = world.probe("/readyz")
    assert status == 503 and AUTHORIZATION_POLICY_CRD in body, (status, body)

    eventually(lambda: not _crd_exists(extensions, AUTHORIZATION_POLICY_CRD), timeout=30, what="CRD gone")
    recreated = time.monotonic()
    install_crds(world.local.kubeconfig)
    world.wait_converged(namespace, ["checkout"], timeout=10)
    world.timings["AuthorizationPolicy CRD recreated: from install to converged"] = (
        time.monotonic() - recreated
    )
    assert world.probe("/readyz")[0] == 200
    world.assert_quiet(namespace)


def test_start_up_during_an_api_server_outage_serves_as_soon_as_it_returns(
    world: ChaosWorld, namespace: str
) -> None:
    world.apply_checkout(namespace)
    world.local.stop_component("kube-apiserver")
    world.start_operator(wait_started=False)
    time.sleep(10)
    assert world.probe("/healthz")[0] == 200  # alive: a liveness probe must not restart it
    status, body = world.probe("/readyz")
    assert status == 503 and "waiting for the API server" in body, (status, body)

    world.local.start_component("kube-apiserver")
    world.timings["start-up during a 10 s outage: serving after the API server returned"] = (
        world.wait_converged(namespace, ["checkout"], timeout=15)
    )
    assert world.probe("/readyz")[0] == 200
    assert world.operator.process is not None and world.operator.process.poll() is None  # no restart


def test_start_up_with_a_crd_missing_serves_as_soon_as_it_appears(world: ChaosWorld, namespace: str) -> None:
    extensions = client.ApiextensionsV1Api(world.admin.api_client)
    extensions.delete_custom_resource_definition(PEER_AUTHENTICATION_CRD)
    eventually(lambda: not _crd_exists(extensions, PEER_AUTHENTICATION_CRD), timeout=30, what="CRD gone")
    world.apply_checkout(namespace)
    world.start_operator()
    time.sleep(10)
    status, body = world.probe("/readyz")
    assert status == 503 and PEER_AUTHENTICATION_CRD in body, (status, body)
    assert not world.ready(namespace)

    install_crds(world.local.kubeconfig)
    seconds = world.wait_converged(namespace, ["checkout"], timeout=15)
    world.timings["start-up with a CRD missing: serving after it appeared"] = seconds
    assert world.probe("/readyz")[0] == 200


def test_deleting_a_namespace_of_ready_services_under_load_is_quiet(
    world: ChaosWorld, namespace: str
) -> None:
    names = [f"svc{i}" for i in range(10)]
    world.start_operator()
    for name in names:
        world.apply_checkout(namespace, name)
    world.wait_converged(namespace, names, timeout=120, ready=False)  # signing is not under test
    world.assert_quiet(namespace)
    log_before = len(world.operator.log())

    world.admin.delete_namespace(namespace)

    def gone() -> bool:
        try:
            client.CoreV1Api(world.admin.api_client).read_namespace(namespace)
        except client.exceptions.ApiException as error:
            return error.status == 404
        return False

    eventually(gone, timeout=120, what=f"namespace {namespace} deleted")
    written = world.operator.log()[log_before:]
    assert "Traceback" not in written
    assert "Failed" not in written, written
    assert "Applied" not in written and "Reconciled" not in written, written
