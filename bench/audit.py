"""Owns the reading of the API server's audit log: every finished request of the measured clients, by
user and verb, counted inside time windows the benchmark recorded.

The audit policy (bench/audit-policy.yaml) logs one event per request at ResponseComplete, so a request
counts once. Windows use the request's requestReceivedTimestamp; the server and the benchmark share
one clock (same machine).
"""

from __future__ import annotations

import bisect
import datetime
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Request:
    at: float  # epoch seconds the server received it
    user: str
    verb: str
    resource: str  # e.g. "networkpolicies", "paymentservices/status"
    code: int


def _epoch(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _resource(event: dict[str, object]) -> str:
    ref = event.get("objectRef") or {}
    assert isinstance(ref, dict)
    resource = str(ref.get("resource", ""))
    sub = ref.get("subresource")
    return f"{resource}/{sub}" if sub else resource


class AuditLog:
    """The parsed log, sorted by time, for window queries."""

    def __init__(self, requests: list[Request]) -> None:
        self.requests = sorted(requests, key=lambda r: r.at)
        self._times = [r.at for r in self.requests]

    @classmethod
    def read(cls, path: Path) -> AuditLog:
        requests = []
        with path.open() as lines:
            for line in lines:
                event = json.loads(line)
                if event.get("stage") != "ResponseComplete":
                    continue
                requests.append(
                    Request(
                        at=_epoch(event["requestReceivedTimestamp"]),
                        user=event["user"]["username"],
                        verb=event["verb"],
                        resource=_resource(event),
                        code=int((event.get("responseStatus") or {}).get("code", 0)),
                    )
                )
        return cls(requests)

    def between(self, start: float, end: float, *, user: str) -> list[Request]:
        low = bisect.bisect_left(self._times, start)
        high = bisect.bisect_right(self._times, end)
        return [r for r in self.requests[low:high] if r.user == user]

    def by_verb(self, start: float, end: float, *, user: str, skip_watches: bool = True) -> dict[str, int]:
        """Requests per verb in the window (watches are long-lived connections, not work: skipped)."""
        counts = Counter(
            r.verb for r in self.between(start, end, user=user) if not (skip_watches and r.verb == "watch")
        )
        return dict(sorted(counts.items()))

    def writes(self, start: float, end: float, *, user: str) -> int:
        return sum(1 for r in self.between(start, end, user=user) if r.verb in WRITE_VERBS)

    def writes_by_resource(self, start: float, end: float, *, user: str) -> dict[str, int]:
        counts = Counter(
            f"{r.verb} {r.resource}" for r in self.between(start, end, user=user) if r.verb in WRITE_VERBS
        )
        return dict(sorted(counts.items()))

    def requests_by_resource(self, start: float, end: float, *, user: str) -> dict[str, int]:
        """Every request but watches, as 'verb resource', in the window."""
        counts = Counter(
            f"{r.verb} {r.resource}" for r in self.between(start, end, user=user) if r.verb != "watch"
        )
        return dict(sorted(counts.items()))
