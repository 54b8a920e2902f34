"""Owns the kopf wiring, and nothing else: credentials, start-up and clean-up, and one event handler per
watched kind that hands the event to the controller. No business logic lives here."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import kopf

from payguard.cluster import Cluster, load_api_client
from payguard.controller import Controller
from payguard.kinds import (
    ANNOTATION_PREFIX,
    CHILD_TYPES,
    FINALIZER,
    OBSERVED_TYPES,
    PAYMENT_SERVICES,
    ResourceType,
)
from payguard.ratelimit import RateLimiter
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
        limiter = RateLimiter(qps=settings.qps, burst=settings.burst)
        memo["controller"] = Controller(
            settings, Cluster(load_api_client(settings.kubeconfig), limiter=limiter)
        )
    controller: Controller = memo["controller"]
    return controller


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
    """Moves kopf's names to payguard.dev, then starts the controller."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.enabled = False  # payguard posts its own Events, with stable reasons
    settings.watching.server_timeout = 300
    await _controller(memo).start()


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    await _controller(memo).stop()


@kopf.on.event(PAYMENT_SERVICES.group, PAYMENT_SERVICES.version, PAYMENT_SERVICES.plural)
async def payment_service_changed(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    _controller(memo).on_service_event(event)


def _object_event_handler(resource: ResourceType) -> None:
    @kopf.on.event(resource.group, resource.version, resource.plural, id=f"{resource.plural}-changed")
    async def object_changed(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
        _controller(memo).on_object_event(resource, event)


for _resource in (*CHILD_TYPES.values(), *OBSERVED_TYPES.values()):
    _object_event_handler(_resource)
