"""Sharding on the chaos suite's control plane: three payguard replicas share 8 shards of 60
PaymentServices in 12 namespaces. Every shard has exactly one owner (Leases and each replica's
payguard_shard_owned agree); a killed replica's shards are taken over within lease + 5 s with every
service staying Ready and drift in a taken-over namespace repaired within lease + 5 s; when it returns, the
shards are rebalanced, and the audit log shows every write made by the holder of its namespace's shard at
that moment. Throughout, each replica's cache (payguard_cached_objects) holds only its own shards'
PaymentServices and NetworkPolicies (and the mesh root's), never the whole fleet."""

from __future__ import annotations

import math
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from chaos_world import ChaosWorld
from fake_cert_manager import FakeCertManager
from ha_world import (
    LEASE_SECONDS,
    Replica,
    audited_writes,
    lease_holders,
    now,
    owned_shards,
    writes_outside_terms,
)
from kube import TestCluster
from localcluster import LocalCluster, free_port
from operator_harness import OperatorProcess, eventually, operator_credentials
from payguard.sharding import shard_of

SHARDS, NAMESPACES, PER_NAMESPACE = 8, 12, 5  # 60 PaymentServices
NAMES = [f"svc{i}" for i in range(PER_NAMESPACE)]
MESH_ROOT = "istio-system"  # payguard's default --mesh-root-namespace: kept by every replica


@pytest.fixture(scope="module")
def admin(chaos_cluster: LocalCluster) -> TestCluster:
    return TestCluster(chaos_cluster.kubeconfig, audit_log=chaos_cluster.audit_log, local=chaos_cluster)


@pytest.fixture
def fleet(admin: TestCluster) -> Iterator[list[str]]:
    namespaces = [admin.create_namespace("shard") for _ in range(NAMESPACES)]
    yield namespaces
    for name in namespaces:
        admin.delete_namespace(name)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[Replica]]:
    made = [Replica(f"replica-{n}", OperatorProcess(tmp_path / f"{n}.log"), free_port()) for n in "abc"]
    yield made
    for replica in made:
        replica.process.stop()
    for replica in made:
        assert not replica.process.tracebacks(), replica.process.tracebacks()


def owners(replicas: list[Replica]) -> dict[str, set[int]]:
    """What each running replica's metric says it owns."""
    found = {}
    for replica in replicas:
        if replica.process.process is None:
            continue
        url = f"http://127.0.0.1:{replica.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            found[replica.identity] = owned_shards(answer.read().decode())
    return found


def metric(text: str, name: str, kind: str) -> float | None:
    prefix = f'{name}{{kind="{kind}"}} '
    return next((float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), None)


def cached_namespaces(admin: TestCluster) -> dict[str, list[str]]:
    """The namespace of every PaymentService and NetworkPolicy in the cluster, by kind (the truth)."""
    services = client.CustomObjectsApi(admin.api_client).list_cluster_custom_object(
        "payguard.dev", "v1alpha1", "paymentservices"
    )["items"]
    policies = client.NetworkingV1Api(admin.api_client).list_network_policy_for_all_namespaces().items
    return {
        "PaymentService": [item["metadata"]["namespace"] for item in services],
        "NetworkPolicy": [item.metadata.namespace for item in policies],
    }


def caches_scoped(admin: TestCluster, replicas: list[Replica]) -> dict[str, dict[str, float | None]] | None:
    """Each running replica's cached PaymentServices and NetworkPolicies, when they are exactly those of
    the namespaces of the shards it owns (and of the mesh root); None while any differs."""
    truth = cached_namespaces(admin)
    found: dict[str, dict[str, float | None]] = {}
    for replica in replicas:
        if replica.process.process is None:
            continue
        url = f"http://127.0.0.1:{replica.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
        owned = owned_shards(text)
        for kind, namespaces in truth.items():
            expected = sum(1 for ns in namespaces if ns == MESH_ROOT or shard_of(ns, shards=SHARDS) in owned)
            cached = metric(text, "payguard_cached_objects", kind)
            if cached != expected:
                return None
            found.setdefault(replica.identity, {})[kind] = cached
    return found


def owned_once(admin: TestCluster, replicas: list[Replica], *, expected_owners: int) -> dict[int, str] | None:
    """Shard -> owner when every shard is held by exactly one replica, by its Lease and by the metrics,
    and the owners hold a fair share each."""
    holders = lease_holders(admin.api_client, shards=SHARDS)
    claimed = owners(replicas)
    counts = Counter(shard for shards in claimed.values() for shard in shards)
    if any(counts[shard] != 1 for shard in range(SHARDS)) or None in holders.values():
        return None
    if any(holders[shard] not in claimed or shard not in claimed[holders[shard]] for shard in range(SHARDS)):  # type: ignore[index]
        return None
    shares = Counter(holders.values())
    if len(shares) != expected_owners or max(shares.values()) > math.ceil(SHARDS / expected_owners):
        return None  # still rebalancing
    return holders  # type: ignore[return-value]


def test_three_replicas_share_the_shards_take_over_a_killed_ones_and_rebalance_when_it_returns(
    chaos_cluster: LocalCluster,
    admin: TestCluster,
    cert_manager_fleet: FakeCertManager,
    replicas: list[Replica],
    fleet: list[str],
    tmp_path: Path,
) -> None:
    assert admin.audit_log is not None
    kubeconfig = operator_credentials(admin, directory=tmp_path)
    started = now()
    world = ChaosWorld(
        chaos_cluster, admin, kubeconfig, replicas[0].process, metrics_port=replicas[0].metrics_port
    )
    for namespace in fleet:
        for name in NAMES:
            world.apply_checkout(namespace, name)
    for replica in replicas:
        replica.start(admin, shards=SHARDS)

    holders = eventually(
        lambda: owned_once(admin, replicas, expected_owners=3), timeout=30, what="8 shards owned once"
    )
    assert sorted(Counter(holders.values()).values()) == [2, 3, 3]
    for namespace in fleet:
        world.wait_converged(namespace, NAMES, timeout=180)
    cached = eventually(lambda: caches_scoped(admin, replicas), timeout=30, what="caches of own shards")
    print(f"Cached per replica (3 replicas): {cached}")
    assert all(counts["PaymentService"] < NAMESPACES * PER_NAMESPACE for counts in cached.values())

    victim = replicas[2]
    lost = {shard for shard, owner in holders.items() if owner == victim.identity}
    drifted = next(ns for ns in fleet if shard_of(ns, shards=SHARDS) in lost)
    victim.process.kill()
    killed = time.monotonic()
    client.NetworkingV1Api(admin.api_client).delete_namespaced_network_policy("svc0-order-service", drifted)
    after = eventually(
        lambda: owned_once(admin, replicas, expected_owners=2), timeout=LEASE_SECONDS + 5, what="takeover"
    )
    print(
        f"HA timing: {len(lost)} shards of a SIGKILLed replica taken over"
        f" after {time.monotonic() - killed:.2f}s"
    )
    # The taker fills its cache for the shard (a relist) before the shard's passes run, then repairs.
    world.wait_converged(drifted, NAMES, timeout=max(LEASE_SECONDS + 5 - (time.monotonic() - killed), 0.1))
    print(f"HA timing: drift in a taken-over shard repaired after {time.monotonic() - killed:.2f}s")
    assert victim.identity not in after.values()
    cached = eventually(lambda: caches_scoped(admin, replicas), timeout=30, what="caches after takeover")
    print(f"Cached per replica (2 replicas): {cached}")
    for namespace in fleet:
        assert all(world.ready(namespace, name) for name in NAMES), namespace
    for namespace in fleet:
        world.assert_quiet(namespace, seconds=2)

    victim.start(admin, shards=SHARDS)
    rebalanced = eventually(
        lambda: owned_once(admin, replicas, expected_owners=3), timeout=30, what="rebalanced over three"
    )
    assert sorted(Counter(rebalanced.values()).values()) == [2, 3, 3]
    for namespace in fleet:
        world.wait_converged(namespace, NAMES, timeout=30)
    # The shards released to the returning replica are dropped from the caches of those that held them.
    eventually(lambda: caches_scoped(admin, replicas), timeout=30, what="caches after rebalancing")

    time.sleep(1)
    writes = audited_writes(admin.audit_log, since=started)
    assert len({w.writer for w in writes if w.resource != "leases"}) == 3
    lease_of = lambda namespace: f"payguard-shard-{shard_of(namespace, shards=SHARDS)}"  # noqa: E731
    assert writes_outside_terms(writes, lease_of=lease_of) == []


@pytest.fixture
def cert_manager_fleet(admin: TestCluster) -> Iterator[FakeCertManager]:
    fake = FakeCertManager(admin.api_client)
    fake.create_cluster_issuer("payments-ca")
    fake.start()
    yield fake
    fake.stop()
