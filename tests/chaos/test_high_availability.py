"""High availability on the chaos suite's control plane: payguard replicas as separate processes under the
chart's RBAC, each with a token bound to a pod of its own (as in a cluster), sharing PaymentServices
through Leases. The API server's audit log is the witness: every write of an object is made by the pod
that held its shard's Lease at that moment.

Lease settings are short (4 s / 3 s / 0.5 s) so takeovers take seconds; takeover times are printed."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from chaos_world import ChaosWorld
from fake_cert_manager import FakeCertManager
from ha_world import LEASE_SECONDS, Replica, audited_writes, lease_holders, now, writes_outside_terms
from kube import TestCluster
from localcluster import LocalCluster, free_port
from operator_harness import OperatorProcess, eventually, operator_credentials

ISSUER = "payments-ca"


@pytest.fixture(scope="module")
def admin(chaos_cluster: LocalCluster) -> TestCluster:
    return TestCluster(chaos_cluster.kubeconfig, audit_log=chaos_cluster.audit_log, local=chaos_cluster)


@pytest.fixture(scope="module")
def kubeconfig(admin: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return operator_credentials(admin, directory=tmp_path_factory.mktemp("ha"))


@pytest.fixture
def cert_manager(admin: TestCluster) -> Iterator[FakeCertManager]:
    fake = FakeCertManager(admin.api_client)
    fake.create_cluster_issuer(ISSUER)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[dict[str, Replica]]:
    made = {
        name: Replica(name, OperatorProcess(tmp_path / f"{name}.log"), free_port())
        for name in ("replica-a", "replica-b", "replica-c")
    }
    yield made
    for replica in made.values():
        if replica.process.process is not None:
            replica.signal(signal.SIGCONT)
        replica.process.stop()
    for replica in made.values():
        if replica.process.log_path.exists():
            assert not replica.process.tracebacks(), replica.process.tracebacks()


@pytest.fixture
def namespace(admin: TestCluster) -> Iterator[str]:
    name = admin.create_namespace("ha")
    yield name
    admin.delete_namespace(name)


def world(chaos_cluster: LocalCluster, admin: TestCluster, kubeconfig: Path, replica: Replica) -> ChaosWorld:
    return ChaosWorld(chaos_cluster, admin, kubeconfig, replica.process, metrics_port=replica.metrics_port)


def delete_network_policy(admin: TestCluster, namespace: str, name: str) -> None:
    client.NetworkingV1Api(admin.api_client).delete_namespaced_network_policy(name, namespace)


def one_holder(admin: TestCluster) -> str:
    return eventually(lambda: lease_holders(admin.api_client, shards=1)[0], what="a holder of shard 0")


def test_the_standby_repairs_drift_within_the_lease_after_the_leader_is_killed(
    chaos_cluster: LocalCluster,
    admin: TestCluster,
    kubeconfig: Path,
    cert_manager: FakeCertManager,
    replicas: dict[str, Replica],
    namespace: str,
) -> None:
    assert admin.audit_log is not None
    started = now()
    two = [replicas["replica-a"], replicas["replica-b"]]
    for replica in two:
        replica.start(admin, shards=1)
    checkout = world(chaos_cluster, admin, kubeconfig, two[0])
    checkout.apply_checkout(namespace)
    checkout.wait_converged(namespace, ["checkout"], timeout=60)
    leader = one_holder(admin)
    standby = next(r for r in two if r.identity != leader)
    assert "Acquired Lease" not in standby.process.log()  # a standby writes nothing and holds nothing

    replicas[leader].process.kill()
    killed = time.monotonic()
    delete_network_policy(admin, namespace, "checkout-order-service")
    checkout.wait_converged(namespace, ["checkout"], timeout=LEASE_SECONDS + 5)
    print(
        f"HA timing: leader SIGKILLed, drift repaired by the standby after {time.monotonic() - killed:.2f}s"
    )
    assert lease_holders(admin.api_client, shards=1)[0] == standby.identity
    assert "Acquired Lease payguard-system/payguard-shard-0" in standby.process.log()

    time.sleep(1)  # the audit log is written as requests complete
    writes = audited_writes(admin.audit_log, since=started)
    writers = {w.writer for w in writes if w.resource != "leases" and w.namespace == namespace}
    assert writers == {leader, standby.identity}, (
        writers
    )  # both wrote: the check below has something to judge
    assert writes_outside_terms(writes, lease_of=lambda _ns: "payguard-shard-0") == []


def test_a_paused_replica_writes_nothing_after_resuming_until_it_holds_the_lease_again(
    chaos_cluster: LocalCluster,
    admin: TestCluster,
    kubeconfig: Path,
    cert_manager: FakeCertManager,
    replicas: dict[str, Replica],
    namespace: str,
) -> None:
    assert admin.audit_log is not None
    started = now()
    two = [replicas["replica-a"], replicas["replica-b"]]
    for replica in two:
        replica.start(admin, shards=1)
    checkout = world(chaos_cluster, admin, kubeconfig, two[0])
    checkout.apply_checkout(namespace)
    checkout.wait_converged(namespace, ["checkout"], timeout=60)
    paused = replicas[one_holder(admin)]
    other = next(r for r in two if r is not paused)

    paused.signal(signal.SIGSTOP)
    delete_network_policy(admin, namespace, "checkout-order-service")  # it sees this when it resumes
    eventually(
        lambda: lease_holders(admin.api_client, shards=1)[0] == other.identity,
        timeout=LEASE_SECONDS + 5,
        what="the other replica to take the Lease over",
    )
    checkout.wait_converged(namespace, ["checkout"], timeout=10)
    time.sleep(2)  # paused for longer than the lease
    resumed = now()
    paused.signal(signal.SIGCONT)
    delete_network_policy(admin, namespace, "checkout-api-gateway")  # tempts both replicas again
    checkout.wait_converged(namespace, ["checkout"], timeout=10)
    eventually(
        lambda: "Lost Lease" in paused.process.log(), timeout=10, what="the paused replica to step down"
    )
    time.sleep(3)

    writes = audited_writes(admin.audit_log, since=started)
    after = [w for w in writes if w.writer == paused.identity and w.at >= resumed and w.code < 300]
    assert [w for w in after if w.resource != "leases"] == [], after
    assert writes_outside_terms(writes, lease_of=lambda _ns: "payguard-shard-0") == []
    assert lease_holders(admin.api_client, shards=1)[0] == other.identity


def test_a_stopping_holder_releases_its_lease_so_the_standby_takes_over_within_a_retry_period(
    chaos_cluster: LocalCluster,
    admin: TestCluster,
    kubeconfig: Path,
    cert_manager: FakeCertManager,
    replicas: dict[str, Replica],
    namespace: str,
) -> None:
    """A rolling update or a drain stops pods with SIGTERM: no wait for the Lease to expire. The replicas
    run with -n and --selector: both keep working per replica under leader election."""
    two = [replicas["replica-a"], replicas["replica-b"]]
    for replica in two:
        replica.start(admin, shards=1, extra=("-n", namespace, "--selector", "payguard.test/skip!=true"))
    checkout = world(chaos_cluster, admin, kubeconfig, two[0])
    checkout.apply_checkout(namespace)
    checkout.wait_converged(namespace, ["checkout"], timeout=60)
    holder = replicas[one_holder(admin)]
    standby = next(r for r in two if r is not holder)

    stopping = time.monotonic()
    holder.process.stop()  # SIGTERM, and waits for the process to exit
    assert "Released Lease payguard-system/payguard-shard-0" in holder.process.log()
    eventually(
        lambda: lease_holders(admin.api_client, shards=1)[0] == standby.identity,
        timeout=LEASE_SECONDS - 1,  # sooner than any expiry could allow
        what="the standby to take the released Lease",
    )
    print(f"HA timing: holder stopped (SIGTERM), standby took over after {time.monotonic() - stopping:.2f}s")
    delete_network_policy(admin, namespace, "checkout-order-service")
    checkout.wait_converged(namespace, ["checkout"], timeout=5)
