"""Owns the kopf wiring, and nothing else: running the operator, credentials, start-up and clean-up.

kopf runs the process (signals, liveness probe, start-up and clean-up handlers); the controller's own
informers do the watching, because a kopf watch that resumes after a gap cannot tell which objects
vanished meanwhile, and a zero-trust operator must notice a deleted NetworkPolicy. No business logic
lives here."""

from __future__ import annotations

import threading
from typing import Any

import kopf

from payguard.cluster import Cluster, load_api_client
from payguard.controller import Controller
from payguard.fence import Fence
from payguard.kinds import WATCHED_TYPES
from payguard.ratelimit import client_limit
from payguard.settings import RunSettings


def run(settings: RunSettings) -> None:
    """Runs the operator until it is stopped by a signal."""
    kopf.run(**_operator_arguments(settings))


async def operate(settings: RunSettings, *, stop_flag: threading.Event, ready_flag: threading.Event) -> None:
    """Runs the operator in the running event loop until `stop_flag` is set (for tests and benchmarks)."""
    await kopf.operator(**_operator_arguments(settings), stop_flag=stop_flag, ready_flag=ready_flag)


def _operator_arguments(settings: RunSettings) -> dict[str, Any]:
    return {
        "standalone": True,
        "clusterwide": settings.clusterwide,
        "namespaces": list(settings.watched_namespaces),
        "liveness_endpoint": settings.liveness_endpoint,
        "memo": kopf.Memo(settings=settings),
    }


def _controller(memo: kopf.Memo) -> Controller:
    """The controller, made on first use: kopf runs startup before login, and logs in again on 401."""
    if "controller" not in memo:
        settings: RunSettings = memo["settings"]
        limiter = client_limit(qps=settings.qps, burst=settings.burst)
        api_client = load_api_client(settings.kubeconfig, connections=_open_requests(settings))
        election, fence = settings.election, None
        if election is not None:
            fence = Fence(
                shards=election.shards, renew_deadline=election.renew_deadline, gated=election.shards > 1
            )
            # The audit log then names the replica behind every request, as the Lease does.
            api_client.user_agent = f"payguard/{election.identity}"
        memo["controller"] = Controller(settings, Cluster(api_client, limiter=limiter, fence=fence))
    controller: Controller = memo["controller"]
    return controller


def _open_requests(settings: RunSettings) -> int:
    """At most: a watch per watched kind and namespace, a request per worker, the Lease elector's and the
    resync's check."""
    return len(WATCHED_TYPES) * max(1, len(settings.watched_namespaces)) + settings.workers + 2


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """kopf watches with the same credentials the pass writes with (kubeconfig, or in-cluster token)."""
    configuration = _controller(memo).cluster.api_client.configuration
    # Newer clients keep the token under "BearerToken", older ones under "authorization".
    header = configuration.get_api_key_with_prefix("BearerToken")
    header = header or configuration.get_api_key_with_prefix("authorization")
    scheme, _space, token = str(header or "").partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Starts the controller; it waits for the API server in the background, so this never fails."""
    settings.posting.enabled = False  # payguard posts its own Events, with stable reasons
    # kopf serves no resource of payguard's, so its own listing and watching of namespaces and CRDs would
    # only repeat what the informers list: a restart lists each kind once.
    settings.scanning.disabled = True
    await _controller(memo).start()


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    await _controller(memo).stop()
