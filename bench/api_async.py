"""Would async I/O make a request cheaper than payguard's threads do? The same server-side apply of a
NetworkPolicy, sent as the same bytes, through:

- `urllib3, threads`: payguard's transport (urllib3 on the kubernetes client's pool), from 1 or
  `--workers` threads, as the workers send it;
- `aiohttp, tasks`: one aiohttp session (kopf's HTTP client, its C parser) in one event loop, 1 or
  `--workers` requests at once.

Reports the process's CPU time and the wall time per request, in rounds that alternate the order. Only
the I/O is compared: a pass's own Python work would still need threads or a rewrite into coroutines.

Run `.venv/bin/python -m bench.api_async`; the result goes to bench/results/api-async.json and .md with
the commit it measured. CI does not run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.api_path import NAMESPACE, RESULTS, _git, _ms, setup
from kube import TestCluster
from localcluster import LocalCluster
from payguard.cluster import load_api_client
from payguard.kinds import FIELD_MANAGER
from payguard.transport import Transport

ROUNDS = 8
PER_WORKER = 40
WORKERS = 4


def bodies(manifest: dict[str, Any], count: int) -> list[bytes]:
    """The apply bodies, encoded once beforehand: both paths send identical bytes."""
    out = []
    for i in range(count):
        body = json.loads(json.dumps(manifest))
        body["metadata"].setdefault("annotations", {})["bench.payguard.dev/round"] = str(i % 2)
        out.append(json.dumps(body).encode())
    return out


def path_of(manifest: dict[str, Any]) -> str:
    return f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies/{manifest['metadata']['name']}"


class Raw(Transport):
    """The transport, given bytes that are already JSON."""

    def encode(self, body: Any) -> bytes:
        return bytes(body)


def threaded(transport: Raw, path: str, payloads: list[bytes], workers: int) -> tuple[float, float]:
    query = [("fieldManager", FIELD_MANAGER), ("force", "true")]

    def work() -> None:
        for payload in payloads:
            transport.request(
                "PATCH", path, query=query, body=payload, content_type="application/apply-patch+yaml"
            )

    threads = [threading.Thread(target=work) for _ in range(workers)]
    cpu, wall = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.process_time() - cpu, time.perf_counter() - wall


async def tasks(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], payloads: list[bytes], workers: int
) -> tuple[float, float]:
    params = {"fieldManager": FIELD_MANAGER, "force": "true"}
    send = {**headers, "Content-Type": "application/apply-patch+yaml"}

    async def work() -> None:
        for payload in payloads:
            async with session.patch(url, params=params, data=payload, headers=send) as response:
                assert response.status < 300, await response.text()
                json.loads(await response.read())

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(work() for _ in range(workers)))
    return time.process_time() - cpu, time.perf_counter() - wall


def ssl_context(configuration: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


def main(argv: list[str]) -> int:
    del argv
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="api-async-cluster-") as state:
        local = LocalCluster(state_dir=Path(state) / "cluster")
        local.up()
        try:
            children = setup(TestCluster(local.kubeconfig, local=local))
            manifest = children["NetworkPolicy"]
            api_client = load_api_client(str(local.kubeconfig), connections=WORKERS + 1)
            transport = Raw(api_client)
            payloads = bodies(manifest, PER_WORKER)
            path = path_of(manifest)
            url = f"{api_client.configuration.host}{path}"
            headers = transport._headers()
            loop = asyncio.new_event_loop()
            session = loop.run_until_complete(_session(ssl_context(api_client.configuration)))
            paths: dict[str, Callable[[int], tuple[float, float]]] = {
                "urllib3, threads": lambda n: threaded(transport, path, payloads, n),
                "aiohttp, tasks": lambda n: loop.run_until_complete(
                    tasks(session, url, headers, payloads, n)
                ),
            }
            for run in paths.values():  # warm up: connections and the server's caches
                run(WORKERS)
            totals = {(name, n): [0.0, 0.0] for name in paths for n in (1, WORKERS)}
            for round_ in range(ROUNDS):
                for name in paths if round_ % 2 == 0 else reversed(list(paths)):
                    for n in (1, WORKERS):
                        cpu, wall = paths[name](n)
                        totals[(name, n)][0] += cpu
                        totals[(name, n)][1] += wall
            loop.run_until_complete(session.close())
            loop.close()
        finally:
            local.down()
    rows = [
        {
            "path": name,
            "at_once": n,
            "requests": ROUNDS * n * PER_WORKER,
            "process_cpu_ms_per_request": _ms(cpu / (ROUNDS * n * PER_WORKER)),
            "wall_ms_per_request": _ms(wall / (ROUNDS * n * PER_WORKER)),
        }
        for (name, n), (cpu, wall) in totals.items()
    ]
    result = {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_operator_changes_not_measured": bool(_git("status", "--porcelain", "--", "operator")),
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_before_after": [round(load, 2), round(os.getloadavg()[0], 2)],
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "rows": rows,
    }
    (RESULTS / "api-async.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# API path: urllib3 in threads vs aiohttp in one event loop, at `{result['commit']}`",
        "",
        f"Python {result['python']}, aiohttp {result['aiohttp']}, measured {result['measured_at']}, "
        "load average "
        f"{result['load_average_before_after'][0]} -> {result['load_average_before_after'][1]}. "
        "`.venv/bin/python -m bench.api_async`. Server-side apply of one NetworkPolicy, identical bytes.",
        "",
        "| path | at once | requests | process CPU ms per request | wall ms per request |",
        "|---|---|---|---|---|",
        *(
            f"| {r['path']} | {r['at_once']} | {r['requests']} | {r['process_cpu_ms_per_request']} | "
            f"{r['wall_ms_per_request']} |"
            for r in rows
        ),
    ]
    (RESULTS / "api-async.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


async def _session(context: ssl.SSLContext) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=WORKERS + 1))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
