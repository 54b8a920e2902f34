"""transport: what it sends besides the body (credentials read on every request, the client's headers), how
it encodes a body (as the kubernetes client's serialiser did), and the pool it sizes. The requests and
their errors run against the real API server in tests/integration/test_cluster_errors.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest
from kubernetes import client

from payguard import handlers
from payguard.cluster import load_api_client
from payguard.kinds import WATCHED_TYPES
from payguard.settings import RunSettings
from payguard.transport import Transport


def api_client(**api_key: str) -> client.ApiClient:
    configuration = client.Configuration(host="https://127.0.0.1:6443/")
    configuration.api_key = dict(api_key)
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(configuration)


def test_the_token_is_read_on_every_request_so_a_refreshed_one_is_sent() -> None:
    """The in-cluster loader refreshes the projected token through this hook, as the client calls it."""
    tokens = iter(["first", "second"])
    api = api_client(BearerToken="stale")

    def refresh(configuration: client.Configuration) -> None:
        configuration.api_key["BearerToken"] = next(tokens)

    api.configuration.refresh_api_key_hook = refresh
    transport = Transport(api)
    assert transport._headers()["authorization"] == "Bearer first"
    assert transport._headers()["authorization"] == "Bearer second"


def test_the_clients_headers_go_along_and_no_token_means_no_authorization_header() -> None:
    api = api_client()
    api.user_agent = "payguard/replica-1"
    headers = Transport(api)._headers()
    assert headers["User-Agent"] == "payguard/replica-1"
    assert headers["Accept"] == "application/json"
    assert "authorization" not in headers


@pytest.mark.parametrize(
    "body",
    [
        {"metadata": {"name": "a", "labels": MappingProxyType({"k": "v"})}, "spec": {"ports": (80, 443)}},
        {
            "status": {
                "lastTransitionTime": datetime(2026, 12, 2, 8, 0, 1, 5, tzinfo=UTC),
                "n": None,
                "ok": True,
            }
        },
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
            {"op": "remove", "path": "/a~1b"},
        ],
        {"note": "\u00fcber \u2013 100%"},
    ],
)
def test_a_body_is_encoded_to_what_the_kubernetes_client_sent(body: Any) -> None:
    ours = json.loads(Transport(api_client()).encode(body))
    theirs = json.loads(json.dumps(client.ApiClient().sanitize_for_serialization(_plain_dicts(body))))
    assert ours == theirs


def test_what_json_cannot_express_is_refused_not_sent_mangled() -> None:
    with pytest.raises(TypeError, match="object is not JSON"):
        Transport(api_client()).encode({"spec": object()})


def test_the_pool_keeps_as_many_idle_connections_as_requests_can_be_open(tmp_path: Any) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    default = load_api_client(str(kubeconfig)).rest_client.pool_manager.connection_pool_kw["maxsize"]
    sized = load_api_client(str(kubeconfig), connections=default + 25)
    assert sized.rest_client.pool_manager.connection_pool_kw["maxsize"] == default + 25
    assert load_api_client(str(kubeconfig), connections=1).rest_client.pool_manager.connection_pool_kw[
        "maxsize"
    ] == (default)  # never below the client's own default


def _plain_dicts(value: Any) -> Any:
    """The client's serialiser takes dicts; payguard's callers handed it dict copies of views."""
    if isinstance(value, MappingProxyType | dict):
        return {k: _plain_dicts(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_dicts(v) for v in value]
    return value


@pytest.mark.parametrize("namespaces", [(), ("payments",), ("a", "b", "c")])
@pytest.mark.parametrize("workers", [4, 40])
def test_the_operators_pool_holds_every_watch_and_worker_at_once(
    tmp_path: Any, namespaces: tuple[str, ...], workers: int
) -> None:
    """The wiring: the client the operator makes keeps idle as many connections as its informers
    (one watch per kind and scope) and workers can hold open, so none is closed and reopened."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    settings = RunSettings(kubeconfig=str(kubeconfig), namespaces=namespaces, workers=workers)
    controller = handlers._controller(handlers.kopf.Memo(settings=settings))
    watches = sum(len(controller._scopes(resource)) for resource in WATCHED_TYPES)
    maxsize = controller.cluster.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"]
    assert maxsize >= watches + workers


KUBECONFIG = json.dumps(
    {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
)
