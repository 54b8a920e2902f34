"""The raw HTTP exchange under `cluster`: one JSON request, one JSON answer, on the kubernetes client's own
connection pool, TLS settings and credentials, without its per-call validation, model serialisation and
response wrapping (bench/results/api-path.md measures the difference).

Errors keep the client's shape, so `cluster` maps them as it always did: a status of 300 or more is an
`ApiException` carrying the status, reason and body; a TLS failure is an `ApiException` with status 0;
other connection failures are urllib3's own exceptions.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from payguard.api import ApiError
from payguard.kinds import ResourceType

JSON = "application/json"


class Transport:
    """Sends JSON to the API server and decodes the JSON it answers; safe to share between threads."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._api_client = api_client
        self._configuration = api_client.configuration
        self._pool = api_client.rest_client.pool_manager
        self._host = str(self._configuration.host).rstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = JSON,
    ) -> Any:
        """The decoded answer of a request that must succeed (status below 300)."""
        response = self.open(method, path, query=query, body=body, content_type=content_type, stream=False)
        if response.status >= 300:
            raise self.failure(response)
        return self.decode(response.data) if response.data else None

    def failure(self, response: urllib3.BaseHTTPResponse) -> ApiException:
        """A response of status 300 or more as the client's ApiException; its connection is released."""
        error = ApiException(status=response.status, reason=response.reason, body=_text(response.data))
        response.release_conn()
        return error

    def open(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = JSON,
        stream: bool,
        timeout: float | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """The response, whatever its status; with `stream` its body is not read yet (the caller releases
        the connection). `timeout` bounds the whole request; None waits as long as the client always did."""
        headers = self._headers()
        payload = None
        if body is not None:
            payload = self.encode(body)
            headers["Content-Type"] = content_type
        url = f"{self._host}{path}?{urlencode(query)}" if query else f"{self._host}{path}"
        try:
            return self._pool.request(
                method,
                url,
                body=payload,
                headers=headers,
                timeout=None if timeout is None else urllib3.Timeout(total=timeout),
                preload_content=not stream,
            )
        except urllib3.exceptions.SSLError as error:  # as the client reports it
            raise ApiException(status=0, reason=f"{type(error).__name__}\n{error}") from None

    def encode(self, body: Any) -> bytes:
        return json.dumps(body, separators=(",", ":"), default=_plain).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data)

    def _headers(self) -> dict[str, str]:
        """The client's default headers (User-Agent) and its credentials, read on every request: the
        in-cluster token is refreshed from its file by the configuration's own hook."""
        headers = {"Accept": JSON, **self._api_client.default_headers}
        if self._api_client.cookie:
            headers["Cookie"] = self._api_client.cookie
        for setting in self._configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers


def _plain(value: Any) -> Any:
    """What json does not encode itself, as the client's serialiser turned it into JSON: a mapping that
    is not a dict (a read-only view of a manifest), a date or time."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def resource_path(
    resource: ResourceType, namespace: str | None, name: str = "", subresource: str = ""
) -> str:
    """The URL path of a kind's collection, or of one object (and its subresource)."""
    base = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
    path = f"{base}/namespaces/{quote(namespace, safe='')}" if namespace is not None else base
    path += f"/{resource.plural}"
    if name:
        path += f"/{quote(name, safe='')}"
    return f"{path}/{subresource}" if subresource else path


def api_error(action: str, error: ApiException) -> ApiError:
    """Keeps only the server's one-line message: a response body could echo what was sent."""
    message = str(error.reason or "")
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        message = str(json.loads(error.body or "{}").get("message", message))
    return ApiError(action, int(error.status or 0), message)
