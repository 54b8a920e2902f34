"""What the HA tests work with: payguard replicas as separate processes under the chart's RBAC, the shard
Leases as the API server holds them, and the audit log's record of who wrote what while holding what."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from chart_tools import NAMESPACE as OPERATOR_NAMESPACE
from kube import OPERATOR_USER, TestCluster
from operator_harness import OPERATOR_ACCOUNT, OperatorProcess

# Short settings, so takeovers take seconds: lease 4 s, renew deadline 3 s, retry 0.5 s.
LEASE_SECONDS, RENEW_DEADLINE, RETRY_PERIOD = 4, 3.0, 0.5
USER_AGENT_PREFIX = "payguard/"


@dataclass
class Replica:
    identity: str
    process: OperatorProcess
    metrics_port: int

    def flags(self, *, shards: int) -> list[str]:
        return [
            "--leader-elect",
            f"--identity={self.identity}",
            f"--lease-namespace={OPERATOR_NAMESPACE}",
            f"--shards={shards}",
            f"--lease-duration={LEASE_SECONDS}",
            f"--renew-deadline={RENEW_DEADLINE}",
            f"--retry-period={RETRY_PERIOD}",
            f"--metrics-port={self.metrics_port}",
            "--metrics-address=127.0.0.1",
        ]

    def start(self, admin: TestCluster, *, shards: int, extra: tuple[str, ...] = ()) -> None:
        """Starts `payguard run` under the chart's ServiceAccount, with a token bound to its own pod."""
        kubeconfig = replica_kubeconfig(admin, self.identity, directory=self.process.log_path.parent)
        self.process.start(kubeconfig, [*self.flags(shards=shards), *extra])

    def signal(self, number: signal.Signals) -> None:
        assert self.process.process is not None
        self.process.process.send_signal(number)


def replica_kubeconfig(admin: TestCluster, identity: str, *, directory: Path) -> Path:
    """The chart's ServiceAccount with a token bound to a Pod named like the replica (an API object only:
    no kubelet runs it), so the audit log names the replica's pod behind each of its requests."""
    core = client.CoreV1Api(admin.api_client)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": identity},
        "spec": {
            "serviceAccountName": OPERATOR_ACCOUNT,
            "containers": [{"name": "operator", "image": "payguard"}],
        },
    }
    try:
        pod = core.create_namespaced_pod(OPERATOR_NAMESPACE, body)
    except client.exceptions.ApiException as error:
        if error.status != 409:
            raise
        pod = core.read_namespaced_pod(identity, OPERATOR_NAMESPACE)
    return admin.kubeconfig_for_service_account(
        namespace=OPERATOR_NAMESPACE, service_account=OPERATOR_ACCOUNT, directory=directory, pod=pod
    )


def lease_holders(api: client.ApiClient, *, shards: int) -> dict[int, str | None]:
    """Each shard's holder as the Lease says (None: missing, released)."""
    listed = client.CoordinationV1Api(api).list_namespaced_lease(OPERATOR_NAMESPACE)
    by_name = {lease.metadata.name: lease for lease in listed.items}
    holders: dict[int, str | None] = {}
    for shard in range(shards):
        lease = by_name.get(f"payguard-shard-{shard}")
        holders[shard] = (lease.spec.holder_identity or None) if lease is not None else None
    return holders


@dataclass(frozen=True)
class Write:
    at: float  # epoch seconds the API server received it
    done: float  # epoch seconds it completed
    writer: str  # the replica: the pod its token is bound to, as the API server authenticated it
    verb: str
    resource: str
    namespace: str
    name: str
    code: int
    holder: str | None = None  # Lease writes: the holder the replica wrote


def audited_writes(log: Path, *, since: float) -> list[Write]:
    """Every write of the chart's ServiceAccount since `since`, in the order the API server completed."""
    writes = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["user"]["username"] != OPERATOR_USER or event.get("stage") != "ResponseComplete":
            continue
        at = _epoch(event["requestReceivedTimestamp"])
        if at < since:
            continue
        pods = (event["user"].get("extra") or {}).get("authentication.kubernetes.io/pod-name") or [""]
        agent = event.get("userAgent", "").split(" ")[0].removeprefix(USER_AGENT_PREFIX)
        assert agent == pods[0], f"user agent {agent!r} from pod {pods[0]!r}"  # payguard names itself right
        ref = event.get("objectRef") or {}
        spec = (event.get("requestObject") or {}).get("spec") or {}
        writes.append(
            Write(
                at=at,
                done=_epoch(event["stageTimestamp"]),
                writer=pods[0],
                verb=event["verb"],
                resource=ref.get("resource", ""),
                namespace=ref.get("namespace", ""),
                name=ref.get("name", ""),
                code=int((event.get("responseStatus") or {}).get("code", 0)),
                holder=spec.get("holderIdentity") if ref.get("resource") == "leases" else None,
            )
        )
    return sorted(writes, key=lambda w: w.done)


def holder_at(writes: list[Write], lease: str, moment: float) -> str | None:
    """Who held `lease` at `moment` by the audit log: the last successful Lease write completed before
    it names the holder, and that holder's term ends a lease duration after it (or at its release)."""
    last = None
    for write in writes:  # ordered by completion
        if write.done > moment:
            break
        if write.resource == "leases" and write.name == lease and write.code < 300:
            last = write
    if last is None or last.holder is None or moment - last.done >= LEASE_SECONDS:
        return None
    return last.holder


def writes_outside_terms(writes: list[Write], *, lease_of: Any) -> list[str]:
    """Every successful write of an object whose writer did not hold its shard's Lease at that moment."""
    found = []
    lease_writes = [w for w in writes if w.resource == "leases"]
    for write in writes:
        if write.resource == "leases" or write.code >= 300:
            continue
        lease = lease_of(write.namespace)
        holder = holder_at(lease_writes, lease, write.at)
        if holder != write.writer:
            found.append(
                f"{write.writer} {write.verb} {write.resource} {write.namespace}/{write.name} "
                f"at {write.at:.3f} while {lease} was held by {holder}"
            )
    return found


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def owned_shards(metrics_text: str) -> set[int]:
    """The shards a replica's payguard_shard_owned metric says it holds."""
    owned = set()
    for line in metrics_text.splitlines():
        if line.startswith("payguard_shard_owned{") and line.rstrip().endswith(" 1.0"):
            owned.add(int(line.split('shard="')[1].split('"')[0]))
    return owned


def now() -> float:
    return time.time()
