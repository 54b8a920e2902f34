"""The API I/O of one watch request, apart from `cluster` (which opens it): a stream of decoded events that
another thread can close, and the 410 that says only a fresh list tells the truth."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import urllib3

from payguard.api import ApiError

__all__ = ["ResourceExpiredError", "WatchStream"]


class ResourceExpiredError(ApiError):
    """410: the resourceVersion a watch asked for is compacted away; only a fresh list tells the truth."""


class WatchStream:
    """The events of one watch request, one decoded JSON object per line; `close` ends it from any thread."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[dict[str, Any]]:
        pending = b""
        try:
            for chunk in self._response.stream(amt=None, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            raise ApiError("Watch", 0, f"watch broken: {error}") from None
        finally:
            self._response.release_conn()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing from another thread may race the reader
            self._response.shutdown()
