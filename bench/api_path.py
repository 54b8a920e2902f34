"""What one API request costs payguard's client: CPU time of the calling thread and wall time per request,
for the requests a pass makes (server-side apply of a NetworkPolicy and an AuthorizationPolicy, the
PaymentService status patch, a get, a list of one name), through two builds of `payguard.cluster`:

- `before`: cluster.py as committed at `--base` (read with `git show`), the kubernetes client's path;
- `after`: cluster.py of the working tree.

Both run in this one process against one fresh local control plane (hack/localcluster.py, as the tests
start it), in rounds that alternate which build goes first, so a noisy neighbour hits both alike. The
thread's CPU time (`time.thread_time`) is the figure to read: the request, its serialisation, TLS and
the parsing all run on the calling thread, and another process's load moves it much less than wall time.

A second phase runs `--workers` threads at once (as the operator's workers do) doing applies and status
patches, and reports the process's CPU time per request, wall time and how many connections each build
opened (the pool should reuse them, not open new ones). A third does the same with `--busy-workers`
threads, more than the client's default pool keeps idle (5 per CPU); each build's client is made as the
operator makes it (`after`: a pool sized for the watches of every watched kind and the workers).

Run `.venv/bin/python -m bench.api_path`; the result goes to bench/results/api-path.json and .md with
the commit it measured. CI does not run it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import REPO
from bench.workload import checkout_copy, checkout_template
from kube import TestCluster
from localcluster import LocalCluster
from payguard import cluster as after
from payguard.kinds import PAYMENT_SERVICES, WATCHED_TYPES
from payguard.platform import Platform
from payguard.render import render_children
from payguard.spec import parse_payment_service

RESULTS = Path(__file__).resolve().parent / "results"
NAMESPACE = "api-path"
SERVICE = "checkout"
Operation = Callable[[Any, int], None]


def load_build(name: str, source: str) -> ModuleType:
    """A cluster.py source loaded as its own module, beside the working tree's `payguard.cluster`."""
    path = Path(tempfile.mkdtemp(prefix="api-path-")) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def operations(children: dict[str, dict[str, Any]]) -> dict[str, Operation]:
    """What a pass asks of the API, each a call on a Cluster; `i` varies the written value."""

    def apply(kind: str) -> Operation:
        def run(cluster: Any, i: int) -> None:
            manifest = json.loads(json.dumps(children[kind]))  # the pass hands over a fresh manifest
            manifest["metadata"].setdefault("annotations", {})["bench.payguard.dev/round"] = str(i % 2)
            cluster.apply(manifest)

        return run

    def status(cluster: Any, i: int) -> None:
        cluster.patch_status(namespace=NAMESPACE, name=SERVICE, status=_status(i))

    def get(cluster: Any, _i: int) -> None:
        assert cluster.read(PAYMENT_SERVICES, namespace=NAMESPACE, name=SERVICE) is not None

    def list_one(cluster: Any, _i: int) -> None:
        items, _version = cluster.list_with_version(PAYMENT_SERVICES, namespace=NAMESPACE, name=SERVICE)
        assert len(items) == 1

    return {
        "apply NetworkPolicy": apply("NetworkPolicy"),
        "apply AuthorizationPolicy": apply("AuthorizationPolicy"),
        "patch status": status,
        "get PaymentService": get,
        "list one PaymentService": list_one,
    }


def _status(i: int) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "observedGeneration": 1,
        "workloadCount": 4,
        "conditions": [
            {
                "type": t,
                "status": "True",
                "reason": "Bench",
                "message": f"round {i % 2}",
                "lastTransitionTime": now,
            }
            for t in ("Ready", "Enforced", "LeastPrivilege", "MutualTLS", "Certificates")
        ],
    }


def sequential(
    builds: dict[str, Any], ops: dict[str, Operation], *, rounds: int, per_round: int
) -> dict[str, Any]:
    """Per request: thread CPU and wall time, in rounds alternating which build goes first."""
    samples: dict[str, dict[str, dict[str, list[float]]]] = {
        b: {o: {"cpu": [], "wall": []} for o in ops} for b in builds
    }
    order = list(builds)
    for round_ in range(rounds):
        for build in order if round_ % 2 == 0 else reversed(order):
            cluster = builds[build]
            for op_name, op in ops.items():
                for i in range(per_round):
                    cpu, wall = time.thread_time(), time.perf_counter()
                    op(cluster, i)
                    samples[build][op_name]["cpu"].append(time.thread_time() - cpu)
                    samples[build][op_name]["wall"].append(time.perf_counter() - wall)
    return {
        build: {
            op: {
                "requests": len(s["cpu"]),
                "cpu_ms_p50": _ms(statistics.median(s["cpu"])),
                "cpu_ms_mean": _ms(statistics.fmean(s["cpu"])),
                "wall_ms_p50": _ms(statistics.median(s["wall"])),
                "wall_ms_p90": _ms(statistics.quantiles(s["wall"], n=10)[-1]),
            }
            for op, s in per_op.items()
        }
        for build, per_op in samples.items()
    }


def concurrent(
    builds: dict[str, Any], ops: dict[str, Operation], *, workers: int, per_worker: int, rounds: int
) -> dict[str, Any]:
    """`workers` threads applying and patching status at once; process CPU per request and connections."""
    chosen = [ops["apply NetworkPolicy"], ops["apply AuthorizationPolicy"], ops["patch status"]]
    totals: dict[str, dict[str, float]] = {b: {"cpu": 0.0, "wall": 0.0, "requests": 0} for b in builds}
    opened = {build: _connections(cluster) for build, cluster in builds.items()}
    order = list(builds)
    for round_ in range(rounds):
        for build in order if round_ % 2 == 0 else reversed(order):
            cluster = builds[build]

            def work(cluster: Any = cluster) -> None:
                for i in range(per_worker):
                    chosen[i % len(chosen)](cluster, i)

            threads = [threading.Thread(target=work) for _ in range(workers)]
            cpu, wall = time.process_time(), time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            totals[build]["cpu"] += time.process_time() - cpu
            totals[build]["wall"] += time.perf_counter() - wall
            totals[build]["requests"] += workers * per_worker
    return {
        build: {
            "requests": int(t["requests"]),
            "process_cpu_ms_per_request": _ms(t["cpu"] / t["requests"]),
            "wall_ms_per_request": _ms(t["wall"] / t["requests"]),
            "connections_opened": _connections(builds[build]) - opened[build],
        }
        for build, t in totals.items()
    }


def _connections(cluster: Any) -> int:
    pools = cluster.api_client.rest_client.pool_manager.pools
    return sum(pools[key].num_connections for key in list(pools.keys()))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def setup(admin: TestCluster) -> dict[str, dict[str, Any]]:
    """The checkout PaymentService and its rendered NetworkPolicy and AuthorizationPolicy (first workload)."""
    admin.create_namespace_named(NAMESPACE)
    body = checkout_copy(checkout_template(), name=SERVICE, namespace=NAMESPACE)
    admin.apply(body, namespace=NAMESPACE)
    live = admin.resource(PAYMENT_SERVICES.api_version, PAYMENT_SERVICES.kind).get(
        name=SERVICE, namespace=NAMESPACE
    )
    service = replace(parse_payment_service(body), uid=live.metadata.uid)
    children: dict[str, dict[str, Any]] = {}
    for child in render_children(service, platform=Platform()):
        children.setdefault(child["kind"], json.loads(json.dumps(child)))
    return children


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_path", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main", help="the commit whose cluster.py is the `before` build")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=20, help="requests per operation, build and round")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--per-worker", type=int, default=30)
    parser.add_argument("--busy-workers", type=int, default=16)
    parser.add_argument("--out", default="api-path", help="file name under bench/results (no suffix)")
    args = parser.parse_args(argv)

    before = load_build("cluster_before", _git("show", f"{args.base}:operator/payguard/cluster.py"))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="api-path-cluster-") as state:
        local = LocalCluster(state_dir=Path(state) / "cluster")
        local.up()
        try:
            admin = TestCluster(local.kubeconfig, local=local)
            children = setup(admin)
            kubeconfig = str(local.kubeconfig)
            builds = {"before": before.Cluster(before.load_api_client(kubeconfig))}
            builds["after"] = after.Cluster(after.load_api_client(kubeconfig))
            # As handlers makes it: room for a watch per watched kind and a request per busy worker.
            open_requests = len(WATCHED_TYPES) + args.busy_workers + 1
            busy = {
                "before": before.Cluster(before.load_api_client(kubeconfig)),
                "after": after.Cluster(after.load_api_client(kubeconfig, connections=open_requests)),
            }
            ops = operations(children)
            for cluster in builds.values():  # warm up: connections, the server's caches, the imports
                for op in ops.values():
                    op(cluster, 0)
            result = {
                "commit": _git("rev-parse", "--short", "HEAD"),
                "base": _git("rev-parse", "--short", args.base),
                "uncommitted_operator_changes_not_measured": bool(
                    _git("status", "--porcelain", "--", "operator")
                ),
                "python": sys.version.split()[0],
                "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "load_average_before_after": [round(load, 2), 0.0],
                "what": __doc__.split("\n\n")[0].replace("\n", " "),
                "sequential": sequential(builds, ops, rounds=args.rounds, per_round=args.per_round),
                "concurrent": concurrent(
                    builds,
                    ops,
                    workers=args.workers,
                    per_worker=args.per_worker,
                    rounds=max(2, args.rounds // 2),
                ),
                "busy": concurrent(
                    busy,
                    ops,
                    workers=args.busy_workers,
                    per_worker=args.per_worker,
                    rounds=max(2, args.rounds // 2),
                ),
                "workers": args.workers,
                "busy_workers": args.busy_workers,
            }
            result["load_average_before_after"][1] = round(os.getloadavg()[0], 2)
        finally:
            local.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(result: dict[str, Any]) -> str:
    seq, con = result["sequential"], result["concurrent"]
    builds = list(seq)
    lines = [
        f"# API path: per-request client cost, `{result['base']}` (before) vs `{result['commit']}` (after)",
        "",
        f"Python {result['python']}, measured {result['measured_at']}, load average "
        f"{result['load_average_before_after'][0]} -> {result['load_average_before_after'][1]}. "
        "`.venv/bin/python -m bench.api_path`. One request at a time; p50 over every round.",
        "",
        "| request | "
        + " | ".join(f"CPU ms, {b}" for b in builds)
        + " | "
        + " | ".join(f"wall ms, {b}" for b in builds)
        + " |",
        "|---" * (1 + 2 * len(builds)) + "|",
    ]
    for op in seq[builds[0]]:
        cpu = [str(seq[b][op]["cpu_ms_p50"]) for b in builds]
        wall = [str(seq[b][op]["wall_ms_p50"]) for b in builds]
        lines.append(f"| {op} | " + " | ".join(cpu + wall) + " |")
    lines += [
        "",
        "Threads at once (applies and status patches):",
        "",
        "| threads | build | process CPU ms per request | wall ms per request | connections opened |",
        "|---|---|---|---|---|",
    ]
    for workers, phase in ((result["workers"], con), (result["busy_workers"], result["busy"])):
        for build, c in phase.items():
            cpu, wall = c["process_cpu_ms_per_request"], c["wall_ms_per_request"]
            lines.append(f"| {workers} | {build} | {cpu} | {wall} | {c['connections_opened']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
