"""Owns Event aggregation the events.k8s.io way (pure, times passed in): an Event identical to one posted
in the last few minutes (same object, type, reason, action and note) is not a new Event but one more
occurrence of the first, counted in its `series`, as client-go's events recorder does."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

SERIES_WINDOW = timedelta(minutes=6)  # client-go's events recorder keeps a series open as long


@dataclass(frozen=True)
class Occurrence:
    name: str  # the Event that carries it
    count: int  # 1: post a new Event named `name`; more: patch its series to this count

    @property
    def is_new(self) -> bool:
        return self.count == 1


@dataclass
class _Series:
    name: str
    count: int
    last: datetime


@dataclass
class EventSeries:
    """The Events posted recently, by their identity; entries older than the window are dropped."""

    window: timedelta = SERIES_WINDOW
    _recent: dict[Hashable, _Series] = field(default_factory=dict)

    def occur(self, identity: Hashable, *, new_name: str, now: datetime) -> Occurrence:
        self._recent = {key: s for key, s in self._recent.items() if now - s.last < self.window}
        series = self._recent.get(identity)
        if series is None:
            series = self._recent[identity] = _Series(new_name, 0, now)
        series.count += 1
        series.last = now
        return Occurrence(series.name, series.count)

    def forget(self, identity: Hashable) -> None:
        """The Event could not be written (or is gone): the next occurrence starts a new one."""
        self._recent.pop(identity, None)


def new_event(
    occurrence: Occurrence,
    *,
    regarding: Mapping[str, Any],
    event_type: str,
    reason: str,
    action: str,
    note: str,
    event_time: str,
    controller: str,
) -> dict[str, Any]:
    """The events.k8s.io/v1 Event that opens a series, about the object `regarding`."""
    metadata = regarding["metadata"]
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": occurrence.name, "namespace": metadata["namespace"]},
        "eventTime": event_time,
        "reportingController": controller,
        "reportingInstance": controller,
        "action": action,
        "reason": reason,
        "note": note,
        "type": event_type,
        "regarding": {
            "apiVersion": regarding.get("apiVersion"),
            "kind": regarding.get("kind"),
            "namespace": metadata["namespace"],
            "name": metadata["name"],
            "uid": metadata.get("uid"),
        },
    }
