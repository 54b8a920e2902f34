"""`python -m bench.failover`: high availability figures on a fresh local control plane, payguard replicas
as separate processes under the chart's RBAC.

- failover: 2 replicas, 1 shard, the chart's Lease settings (15 s / 10 s / 2 s); SIGKILL the holder,
  delete a NetworkPolicy at once, time until it is back (repaired by the standby). Repeated `--kills`
  times; the killed replica is restarted as the new standby before the next kill.
- memory: RSS and cached objects per replica with `--services` PaymentServices, at 1 replica and at 3
  replicas (8 shards: each caches only its shards' namespaces), and what a takeover costs the replicas
  taking over (time to fill their caches, list requests, passes, writes, CPU seconds, RSS).

Writes bench/results/<name>.json and <name>.md (`--name`, default failover; `--kills 0` skips failover).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from bench import REPO
from bench.processes import read_process, wait_until
from bench.workload import apply_batch, create_namespaces, make_batch
from ha_world import lease_holders
from kube import TestCluster
from localcluster import LocalCluster, free_port
from operator_harness import OPERATOR_NAMESPACE, OperatorProcess, operator_credentials

RESULTS = REPO / "bench" / "results"


class Replica:
    def __init__(self, identity: str, log: Path) -> None:
        self.identity = identity
        self.process = OperatorProcess(log)
        self.port = free_port()

    def start(self, kubeconfig: Path, *, shards: int, leases: tuple[str, ...]) -> None:
        flags = ["--leader-elect", f"--identity={self.identity}", f"--lease-namespace={OPERATOR_NAMESPACE}"]
        flags += [f"--shards={shards}", *leases, f"--metrics-port={self.port}", "--metrics-address=127.0.0.1"]
        self.process.start(kubeconfig, flags, timeout=600)

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    def reading(self) -> dict[str, float]:
        found = read_process(self.pid)
        assert found is not None
        return {
            "rss_mib": round(found.rss_mib, 1),
            "cpu_seconds": round(found.cpu_seconds, 2),
            "cached_objects": self.metric("payguard_cached_objects{"),
        }

    def fill_seconds(self, *, after: int) -> list[float]:
        """How long each cache fill logged after the first `after` characters of the log took."""
        text = self.process.log()[after:]
        return [float(s) for s in re.findall(r"Filled the cache for shard \d+ in ([0-9.]+)s", text)]


def children_present(admin: TestCluster, namespaces: tuple[str, ...], expected: int) -> bool:
    networking = client.NetworkingV1Api(admin.api_client)
    return sum(len(networking.list_namespaced_network_policy(ns).items) for ns in namespaces) >= expected


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--name", default="failover", help="results file name (without suffix)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"services": args.services, "kills": args.kills, "started": time.time()}
    with tempfile.TemporaryDirectory(prefix="payguard-failover-") as state:
        local = LocalCluster(state_dir=Path(state) / "cluster")
        local.up()
        try:
            admin = TestCluster(local.kubeconfig)
            kubeconfig = operator_credentials(admin, directory=Path(state))
            results |= run(admin, kubeconfig, Path(state), services=args.services, kills=args.kills)
        finally:
            local.down()
    results["seconds"] = round(time.time() - results["started"], 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(report(results))
    print(report(results))
    return 0


def run(admin: TestCluster, kubeconfig: Path, state: Path, *, services: int, kills: int) -> dict[str, Any]:
    batch = make_batch("ha", services, per_namespace=50)
    create_namespaces(admin, batch)
    admin.resource("payguard.dev/v1alpha1", "PaymentService")  # discovery once: its cache is not thread-safe
    apply_batch(admin, batch)
    expected = services * 4  # NetworkPolicies: one per workload
    replicas = [Replica(f"replica-{n}", state / f"{n}.log") for n in "abc"]
    sharded = ("--lease-duration=15", "--renew-deadline=10", "--retry-period=2")
    out: dict[str, Any] = {}

    # Memory at one replica (it owns the only shard), then three replicas over 8 shards.
    replicas[0].start(kubeconfig, shards=8, leases=sharded)
    started = time.monotonic()
    assert wait_until(lambda: children_present(admin, batch.namespaces, expected), timeout=1800, interval=2)
    out["converged_one_replica_seconds"] = round(time.monotonic() - started, 1)
    time.sleep(10)
    out["memory_one_replica"] = replicas[0].reading()
    for replica in replicas[1:]:
        replica.start(kubeconfig, shards=8, leases=sharded)
    assert wait_until(lambda: len(set(lease_holders(admin.api_client, shards=8).values())) == 3, timeout=120)
    time.sleep(20)
    out["memory_three_replicas"] = {r.identity: r.reading() for r in replicas}
    out["shards_three_replicas"] = {
        r.identity: sum(1 for h in lease_holders(admin.api_client, shards=8).values() if h == r.identity)
        for r in replicas
    }

    # What a takeover costs: kill one of three; one survivor's passes, writes, CPU and RSS meanwhile.
    victim, survivors = replicas[2], replicas[:2]
    before = {
        r.identity: (
            r.metric("payguard_reconciles_total"),
            r.metric("payguard_api_writes_total"),
            r.reading(),
            r.metric("payguard_cache_lists_total"),
            len(r.process.log()),
        )
        for r in survivors
    }
    victim.process.kill()
    killed = time.monotonic()
    assert wait_until(
        lambda: victim.identity not in lease_holders(admin.api_client, shards=8).values(), timeout=60
    )
    out["takeover_seconds"] = round(time.monotonic() - killed, 2)
    time.sleep(15)
    out["takeover_cost"] = {
        r.identity: {
            "passes": r.metric("payguard_reconciles_total") - before[r.identity][0],
            "writes": r.metric("payguard_api_writes_total") - before[r.identity][1],
            "cpu_seconds": round(r.reading()["cpu_seconds"] - before[r.identity][2]["cpu_seconds"], 2),
            "rss_mib_before": before[r.identity][2]["rss_mib"],
            "rss_mib_after": r.reading()["rss_mib"],
            "cached_before": before[r.identity][2]["cached_objects"],
            "cached_after": r.reading()["cached_objects"],
            "lists": r.metric("payguard_cache_lists_total") - before[r.identity][3],
            "fill_seconds": r.fill_seconds(after=before[r.identity][4]),
        }
        for r in survivors
    }
    for replica in survivors:
        replica.process.stop()
    if not kills:
        return out
    return out | measure_failover(admin, kubeconfig, state, namespace=batch.namespaces[0], kills=kills)


def measure_failover(
    admin: TestCluster, kubeconfig: Path, state: Path, *, namespace: str, kills: int
) -> dict[str, Any]:
    """Failover with the chart's defaults: 2 replicas, 1 shard."""
    sharded = ("--lease-duration=15", "--renew-deadline=10", "--retry-period=2")
    out: dict[str, Any] = {}
    pair = [Replica(f"pair-{n}", state / f"pair-{n}.log") for n in "ab"]
    for replica in pair:
        replica.start(kubeconfig, shards=1, leases=sharded)
    networking = client.NetworkingV1Api(admin.api_client)
    name = "svc-0001-order-service"
    times = []
    for _ in range(kills):
        holder = wait_until(
            lambda: lease_holders(admin.api_client, shards=1)[0] in {p.identity for p in pair}, timeout=60
        )
        assert holder
        current = lease_holders(admin.api_client, shards=1)[0]
        leader = next(p for p in pair if p.identity == current)
        time.sleep(3)
        leader.process.kill()
        killed = time.monotonic()
        networking.delete_namespaced_network_policy(name, namespace)

        def back() -> bool:
            try:
                networking.read_namespaced_network_policy(name, namespace)
            except client.exceptions.ApiException:
                return False
            return True

        assert wait_until(back, timeout=120, interval=0.05)
        times.append(time.monotonic() - killed)
        leader.start(kubeconfig, shards=1, leases=sharded)
    out["failover_seconds"] = [round(t, 2) for t in times]
    out["failover_p50"] = round(statistics.median(times), 2)
    out["failover_p99"] = round(percentile(times, 0.99), 2)
    for replica in pair:
        replica.process.stop()
    return out


def report(results: dict[str, Any]) -> str:
    one = results["memory_one_replica"]
    lines = [
        "# High availability: failover and memory per replica",
        "",
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(results['started']))}, {results['seconds']} s, "
        f"{results['services']} PaymentServices (examples/checkout.yaml, 50 per namespace), Lease settings "
        f"15 s / 10 s / 2 s (the chart's). `python -m bench.failover --kills {results['kills']}`; every "
        "figure in the .json beside this file.",
        "",
    ]
    if results["kills"]:
        lines.append(
            f"- failover over {results['kills']} SIGKILLs of the holder (2 replicas, 1 shard; drift "
            f"introduced right after the kill, time until repaired): p50 **{results['failover_p50']} s**, "
            f"p99 **{results['failover_p99']} s** ({', '.join(map(str, results['failover_seconds']))})"
        )
    lines += [
        f"- memory, 1 replica owning all 8 shards: RSS {one['rss_mib']} MiB, "
        f"{one.get('cached_objects', '?')} cached objects "
        f"(converged in {results['converged_one_replica_seconds']} s)",
        "- memory, 3 replicas over 8 shards: "
        + ", ".join(
            f"{name} {reading['rss_mib']} MiB, {reading.get('cached_objects', '?')} cached objects "
            f"({results['shards_three_replicas'][name]} shards)"
            for name, reading in results["memory_three_replicas"].items()
        ),
        "- takeover of a SIGKILLed replica's shards (of 3): Leases moved after "
        f"{results['takeover_seconds']} s; cost per survivor over the next 15 s: "
        + "; ".join(
            f"{name}: cache filled in {cost.get('fill_seconds', '?')} s with {cost.get('lists', '?')} lists, "
            f"cached {cost.get('cached_before', '?')} -> {cost.get('cached_after', '?')} objects, "
            f"{cost['passes']:.0f} passes, {cost['writes']:.0f} writes, "
            f"{cost['cpu_seconds']} CPU s, RSS {cost['rss_mib_before']} -> {cost['rss_mib_after']} MiB"
            for name, cost in results["takeover_cost"].items()
        ),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
